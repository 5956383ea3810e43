//! The population model: households and persons, their life course over the covered period
//! (moves, marriages, jobs and insurers, conditions, events, care needs, deaths).

use crate::date::{Date, FIRST_FY, LAST_FY, PERIOD_END, PERIOD_START};
use crate::medical::{CONDS, c, phi, prevalence};
use crate::names::{self, Given, SURNAMES};
use crate::rng::{Rand, RandExt, hash, stream, unit};
use crate::world::{Spec, World};

/// Household plan decided in the sequential pre-pass (only what determines the size).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HhPlan {
    pub kind: u8,
    /// kind-specific: number of children / grandparents
    pub a: u8,
    /// kind-specific: spouse present
    pub b: u8,
    /// number of members
    pub size: u8,
}

/// Household kinds.
pub(crate) mod hk {
    pub const SINGLE_YOUNG: u8 = 0;
    pub const SINGLE_OLD: u8 = 1;
    pub const COUPLE_YOUNG: u8 = 2;
    pub const COUPLE_OLD: u8 = 3;
    pub const FAMILY: u8 = 4;
    pub const SINGLE_PARENT: u8 = 5;
    pub const OLD_PARENT_CHILD: u8 = 6;
    pub const THREE_GEN: u8 = 7;
}

/// Sequential pre-pass: household kinds and sizes until exactly `n` persons.
pub(crate) fn plan_households(n: u64, seed: u64) -> Vec<HhPlan> {
    let mut rng = stream(seed, 0x504C_414E, 0);
    let mut out = Vec::with_capacity((n / 2 + 4) as usize);
    let weights = [0.17, 0.17, 0.06, 0.175, 0.21, 0.06, 0.06, 0.085];
    let mut total = 0u64;
    while total < n {
        let kind = rng.weighted(&weights) as u8;
        let (a, b) = match kind {
            hk::FAMILY => (1 + rng.weighted(&[0.35, 0.45, 0.2]) as u8, 1),
            hk::SINGLE_PARENT => (1 + rng.weighted(&[0.6, 0.4]) as u8, 0),
            hk::THREE_GEN => (1 + rng.p(0.55) as u8, rng.p(0.85) as u8),
            _ => (0, 0),
        };
        let size = match kind {
            hk::SINGLE_YOUNG | hk::SINGLE_OLD => 1,
            hk::COUPLE_YOUNG | hk::COUPLE_OLD | hk::OLD_PARENT_CHILD => 2,
            hk::FAMILY => 2 + a,
            hk::SINGLE_PARENT => 1 + a,
            _ => a + 1 + b + rng.weighted(&[0.25, 0.35, 0.3, 0.1]) as u8,
        };
        let left = n - total;
        let mut p = HhPlan { kind, a, b, size };
        if (size as u64) > left {
            // trim the last household to fit exactly
            p = if left == 1 { HhPlan { kind: hk::SINGLE_OLD, a: 0, b: 0, size: 1 } } else { HhPlan { kind: hk::COUPLE_OLD, a: 0, b: 0, size: 2 } };
        }
        total += p.size as u64;
        out.push(p);
    }
    out
}

/// One condition instance of a person.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CondInst {
    pub c: u8,
    pub onset: Date,
    pub end: Option<Date>,
    pub diagnosed: bool,
    /// Facility treating it (outpatient).
    pub fac: u32,
}

/// A hospital admission.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    pub c: u8,
    pub fac: u32,
    pub start: Date,
    pub days: i32,
}

/// An employment episode (own employee insurance).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Job {
    pub start: Date,
    /// exclusive
    pub end: Date,
    pub insurer: u8,
}

/// A care-need certification.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cert {
    pub app_type: u8,
    pub applied: Date,
    pub decided: Date,
    pub level: u8,
    pub from: Date,
    pub to: Date,
}

/// A person and their simulated life course.
pub(crate) struct Person {
    pub pidx: u64,
    pub member: u8,
    pub female: bool,
    pub birth: Date,
    pub rel: &'static str,
    pub surname: u16,
    /// Old-form kanji of the official surname, if registered with one.
    pub variant: Option<&'static str>,
    pub given: &'static Given,
    /// Marriage in the period: date, new surname.
    pub marriage: Option<(Date, u16)>,
    /// First day observed in the municipality (birth or move-in), if in the period.
    pub in_date: Option<Date>,
    pub moved_in: bool,
    pub out_date: Option<Date>,
    pub death: Option<Date>,
    pub conds: Vec<CondInst>,
    pub admissions: Vec<Admission>,
    pub jobs: Vec<Job>,
    /// Dependent on a spouse's insurance outside the household from this date (after marriage).
    pub ext_sponsor: Option<(Date, u8)>,
    pub dependent: bool,
    pub bmi_z: f64,
    pub smoker: bool,
    pub drinker: f64,
    pub checkup_prop: f64,
    pub dental_prop: f64,
    pub vacc_prop: f64,
    pub hospital: u32,
    pub certs: Vec<Cert>,
    pub care_user: bool,
    pub nursing_home: bool,
}

impl Person {
    /// First day present.
    pub(crate) fn start(&self) -> Date {
        self.in_date.unwrap_or(PERIOD_START).max(PERIOD_START)
    }
    /// Last day present (inclusive).
    pub(crate) fn end(&self) -> Date {
        let mut e = PERIOD_END;
        if let Some(d) = self.out_date {
            e = e.min(d.add(-1));
        }
        if let Some(d) = self.death {
            e = e.min(d);
        }
        e
    }
    /// Whether present on a date.
    pub(crate) fn present(&self, d: Date) -> bool {
        d >= self.start() && d <= self.end()
    }
    /// Surname index on a date.
    pub(crate) fn surname_on(&self, d: Date) -> u16 {
        match self.marriage {
            Some((md, s)) if d >= md => s,
            _ => self.surname,
        }
    }
    /// Whether the person has the condition (diagnosed or not) active on `d`.
    pub(crate) fn has(&self, cond: usize, d: Date) -> bool {
        self.conds.iter().any(|ci| ci.c as usize == cond && ci.onset <= d && ci.end.is_none_or(|e| e > d))
    }
    /// Whether the person has a diagnosed (treated) condition on `d`.
    pub(crate) fn treated(&self, cond: usize, d: Date) -> bool {
        self.conds.iter().any(|ci| ci.c as usize == cond && ci.diagnosed && ci.onset <= d && ci.end.is_none_or(|e| e > d))
    }
    /// Age at a date.
    pub(crate) fn age(&self, d: Date) -> i32 {
        self.birth.age_at(d)
    }
}

/// An address (ward, town index, chome, banchi, go).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Addr {
    pub ward: u8,
    pub town: u8,
    pub chome: u8,
    pub ban: u8,
    pub go: u8,
}

/// A household.
#[allow(dead_code)] // kind and move dates are kept for debugging and future sources
pub(crate) struct Household {
    pub idx: u64,
    pub kind: u8,
    pub members: Vec<Person>,
    /// Address history: from date, address.
    pub addrs: Vec<(Date, Addr)>,
    pub move_in: Option<Date>,
    pub move_out: Option<Date>,
    /// Previous municipality code for move-ins.
    pub from_code: u32,
}

impl Household {
    /// Address on a date.
    pub(crate) fn addr_on(&self, d: Date) -> Addr {
        let mut a = self.addrs[0].1;
        for (from, ad) in &self.addrs {
            if *from <= d {
                a = *ad;
            }
        }
        a
    }
}

fn rand_addr(rng: &mut Rand) -> Addr {
    Addr {
        ward: rng.int(0, 6) as u8,
        town: rng.int(0, 29) as u8,
        chome: rng.int(1, 5) as u8,
        ban: rng.int(1, 30) as u8,
        go: rng.int(1, 25) as u8,
    }
}

fn birth_from_age(rng: &mut Rand, age: f64) -> Date {
    // age in years at PERIOD_START, may be negative (born during the period)
    let days = (age * 365.2425) as i32;
    let b = PERIOD_START.add(-days - rng.int(0, 364) as i32);
    if age < 0.0 { b.max(PERIOD_START).min(PERIOD_END.add(-20)) } else { b }
}

/// Gompertz annual mortality.
fn mortality(age: i32, female: bool) -> f64 {
    let a = age as f64;
    let q = if female { (-12.36 + 0.1118 * a).exp() } else { (-10.69 + 0.0977 * a).exp() };
    let q = if age < 1 { 0.0015 } else if age < 40 { q.max(0.0004) } else { q };
    q.min(0.6)
}

/// Build and simulate one household.
pub(crate) fn simulate_household(world: &World, seed: u64, hh_idx: u64, plan: HhPlan, first_pidx: u64) -> Household {
    let mut rng = stream(seed, 0x484F_5553, hh_idx);
    // --- composition: (age at start, female, relationship, is_dependent_type)
    let mut m: Vec<(f64, bool, &'static str)> = Vec::with_capacity(plan.size as usize);
    let u = |r: &mut Rand| r.u();
    match plan.kind {
        hk::SINGLE_YOUNG => {
            let age = 19.0 + 46.0 * u(&mut rng).powf(1.3);
            m.push((age, rng.p(0.45), "世帯主"));
        }
        hk::SINGLE_OLD => {
            let age = 65.0 + 34.0 * (u(&mut rng) * u(&mut rng)).sqrt();
            m.push((age, rng.p(0.70), "世帯主"));
        }
        hk::COUPLE_YOUNG | hk::COUPLE_OLD => {
            let head = if plan.kind == hk::COUPLE_YOUNG {
                24.0 + 41.0 * u(&mut rng).powf(1.1)
            } else {
                65.0 + 30.0 * (u(&mut rng) * u(&mut rng)).sqrt()
            };
            let sp = (head - rng.gauss(2.5, 3.0)).max(20.0);
            m.push((head, false, "世帯主"));
            m.push((sp, true, "妻"));
        }
        hk::FAMILY => {
            let head = 26.0 + 34.0 * u(&mut rng);
            let sp = (head - rng.gauss(2.0, 3.0)).max(20.0);
            let female_head = rng.p(0.04);
            m.push((head, female_head, "世帯主"));
            m.push((sp, !female_head, if female_head { "夫" } else { "妻" }));
            let mother = if female_head { head } else { sp };
            for _ in 0..plan.a {
                let mut age = mother - rng.gauss(31.0, 4.5);
                if age > 26.0 {
                    age = rng.u() * 20.0;
                }
                if age < -4.9 {
                    age = -4.9 * rng.u();
                }
                m.push((age, rng.p(0.488), "子"));
            }
        }
        hk::SINGLE_PARENT => {
            let parent = 28.0 + 30.0 * u(&mut rng);
            m.push((parent, rng.p(0.85), "世帯主"));
            for _ in 0..plan.a {
                let age = (parent - rng.gauss(30.0, 5.0)).clamp(0.0, 24.0);
                m.push((age, rng.p(0.488), "子"));
            }
        }
        hk::OLD_PARENT_CHILD => {
            let parent = 72.0 + 25.0 * u(&mut rng).powf(0.8);
            let child = (parent - rng.gauss(31.0, 5.0)).max(30.0);
            let pf = rng.p(0.78);
            m.push((child, rng.p(0.45), "世帯主"));
            m.push((parent, pf, if pf { "母" } else { "父" }));
        }
        _ => {
            let gp = 66.0 + 26.0 * u(&mut rng);
            let head = (gp - rng.gauss(30.0, 4.0)).max(30.0);
            m.push((head, false, "世帯主"));
            if plan.b == 1 {
                m.push(((head - rng.gauss(2.0, 3.0)).max(22.0), true, "妻"));
            }
            let mother = head - 2.0;
            let kids = plan.size - plan.a - 1 - plan.b;
            for _ in 0..kids {
                let mut age = mother - rng.gauss(31.0, 4.5);
                if age > 28.0 {
                    age = rng.u() * 22.0;
                }
                if age < -4.9 {
                    age = -4.9 * rng.u();
                }
                m.push((age, rng.p(0.488), "孫"));
            }
            // grandparents (relationship to head: 父 / 母)
            let gpf = rng.p(0.7);
            m.push((gp, gpf, if gpf { "母" } else { "父" }));
            if plan.a == 2 {
                m.push(((gp + if gpf { 2.5 } else { -2.5 } + rng.gauss(0.0, 2.5)).max(60.0), !gpf, if gpf { "父" } else { "母" }));
            }
        }
    }
    // relationship labels for THREE_GEN children are relative to head: 子
    if plan.kind == hk::THREE_GEN {
        for x in m.iter_mut() {
            if x.2 == "孫" {
                x.2 = "子";
            }
        }
    }
    debug_assert_eq!(m.len(), plan.size as usize);

    // --- household-level: surname, address, moves
    let surname = names::pick_surname(rng.u());
    let s = &SURNAMES[surname as usize];
    let variant = if rng.p(0.3) { names::surname_variant(s, rng.int(0, 3) as u8) } else { None };
    let young = matches!(plan.kind, hk::SINGLE_YOUNG | hk::COUPLE_YOUNG | hk::FAMILY | hk::SINGLE_PARENT);
    let move_in = if rng.p(if young { 0.07 } else { 0.02 }) { Some(PERIOD_START.add(rng.int(1, 1800) as i32)) } else { None };
    let out_p = match plan.kind {
        hk::SINGLE_YOUNG => 0.16,
        hk::COUPLE_YOUNG | hk::FAMILY | hk::SINGLE_PARENT => 0.07,
        _ => 0.015,
    };
    let move_out = if rng.p(out_p) {
        let lo = move_in.map_or(30, |d| d.0 - PERIOD_START.0 + 60);
        if lo < 1800 { Some(PERIOD_START.add(rng.int(lo as i64, 1820) as i32)) } else { None }
    } else {
        None
    };
    let mut addrs = vec![(Date(i32::MIN / 2), rand_addr(&mut rng))];
    if rng.p(0.08) {
        let d = PERIOD_START.add(rng.int(30, 1800) as i32);
        if move_in.is_none_or(|mi| d > mi.add(60)) && move_out.is_none_or(|mo| d < mo) {
            let mut a = rand_addr(&mut rng);
            if rng.p(0.6) {
                a.ward = addrs[0].1.ward;
            }
            addrs.push((d, a));
        }
    }
    let from_code = 40000 + rng.int(100, 999) as u32;

    let mut hh = Household { idx: hh_idx, kind: plan.kind, members: Vec::with_capacity(m.len()), addrs, move_in, move_out, from_code };

    // --- persons
    for (i, (age, female, rel)) in m.iter().enumerate() {
        let pidx = first_pidx + i as u64;
        let birth = birth_from_age(&mut rng, *age);
        let (by, _, _) = birth.ymd();
        let (gc, gi) = names::pick_given(*female, by, rng.u(), rng.u());
        let given = names::given(*female, gc, gi);
        let mut in_date = None;
        let mut moved_in = false;
        if birth >= PERIOD_START {
            in_date = Some(birth);
        }
        if let Some(mi) = move_in {
            if birth < mi {
                in_date = Some(mi);
                moved_in = true;
            }
        }
        let mut p = Person {
            pidx,
            member: i as u8,
            female: *female,
            birth,
            rel,
            surname,
            variant,
            given,
            marriage: None,
            in_date,
            moved_in,
            out_date: move_out,
            death: None,
            conds: Vec::new(),
            admissions: Vec::new(),
            jobs: Vec::new(),
            ext_sponsor: None,
            dependent: false,
            bmi_z: rng.normal(),
            smoker: false,
            drinker: rng.u(),
            checkup_prop: rng.u(),
            dental_prop: rng.u(),
            vacc_prop: rng.u(),
            hospital: 0,
            certs: Vec::new(),
            care_user: rng.p(0.85),
            nursing_home: rng.p(0.35),
        };
        let age_start = p.age(PERIOD_START);
        p.smoker = if p.female { rng.p(if age_start < 70 { 0.09 } else { 0.04 }) } else { rng.p(if age_start < 40 { 0.3 } else if age_start < 70 { 0.28 } else { 0.15 }) } && age_start >= 20;
        // individual move-outs of young adults (study, jobs), marriages
        if p.out_date.is_none() && (18..=29).contains(&age_start) && *rel == "子" && rng.p(0.25) {
            p.out_date = Some(PERIOD_START.add(rng.int(0, 1800) as i32));
        }
        simulate_person(world, &mut rng, &mut p, plan.kind, rel);
        hh.members.push(p);
    }
    for p in hh.members.iter_mut() {
        p.dependent = matches!(p.rel, "妻" | "夫" | "子") && p.jobs.is_empty();
    }
    hh
}

fn fy_start(fy: i32) -> Date {
    Date::from_ymd(fy, 4, 1)
}

/// Onset (and end) of chronic condition `ci` for a liability draw `u` (smaller = more liable).
fn chronic_span(p: &Person, ci: usize, uq: f64, rng: &mut Rand) -> Option<(Date, Option<Date>)> {
    let cond = &CONDS[ci];
    let end_age = p.birth.age_at(PERIOD_END).max(0);
    let monotone = ci != c::L20 && ci != c::J45;
    if monotone && uq >= prevalence(cond, p.female, end_age as f64 + 0.5) {
        return None;
    }
    let mut onset = None;
    for a in 0..=end_age {
        let active = uq < prevalence(cond, p.female, a as f64 + 0.5);
        match (onset, active) {
            (None, true) => onset = Some(a),
            (Some(o), false) if !monotone => {
                let od = p.birth.add_years(o).add(rng.int(0, 364) as i32);
                let ed = p.birth.add_years(a).add(rng.int(0, 364) as i32);
                if ed <= od {
                    return None;
                }
                return Some((od, Some(ed)));
            }
            _ => {}
        }
    }
    let o = onset?;
    let od = p.birth.add_years(o).add(rng.int(0, 364) as i32).min(PERIOD_END).max(p.birth);
    Some((od, None))
}

fn pick_clinic(world: &World, p: &Person, spec: Spec, salt: u64) -> u32 {
    let list = world.clinics(spec);
    list[(hash(&[p.pidx, spec as u64, salt]) % list.len() as u64) as usize]
}

fn simulate_person(world: &World, rng: &mut Rand, p: &mut Person, kind: u8, rel: &str) {
    // usual hospital
    let hw = rng.weighted(&[0.22, 0.04, 0.14, 0.60]);
    p.hospital = if hw < 3 { world.ehr_hospitals[hw] } else { world.other_hospitals[(hash(&[p.pidx, 77]) % world.other_hospitals.len() as u64) as usize] };

    // --- chronic conditions (liability-threshold model, correlated with BMI and smoking)
    let z_dm = rng.normal();
    let z_ht = rng.normal();
    for ci in 0..c::N_CHRONIC {
        let shift = match ci {
            c::E11 => 0.55 * p.bmi_z + 0.25 * z_dm,
            c::I10 => 0.4 * p.bmi_z + 0.3 * z_ht,
            c::E78 => 0.3 * p.bmi_z,
            c::J44 => if p.smoker { 1.0 } else { -0.5 },
            c::I25 | c::I50 | c::N18 => 0.3 * z_dm + 0.3 * z_ht,
            _ => 0.0,
        };
        let z = rng.normal() * (1.0f64 - 0.25).sqrt() + shift;
        // standardise roughly so the marginal prevalence is kept
        let sd = (0.75 + shift_var(ci)).sqrt();
        let uq = 1.0 - phi(z / sd);
        if let Some((onset, end)) = chronic_span(p, ci, uq, rng) {
            let diagnosed = rng.p(match ci {
                c::E11 => 0.72,
                c::I10 => 0.78,
                c::E78 => 0.65,
                c::N18 => 0.5,
                _ => 0.9,
            });
            let at_hosp = rng.p(match ci {
                c::I50 | c::N18 => 0.4,
                c::I25 => 0.35,
                c::I48 => 0.3,
                c::J44 => 0.25,
                c::F03 => 0.2,
                c::E11 => 0.12,
                _ => 0.04,
            });
            let spec = if p.birth.age_at(onset.max(PERIOD_START)) < 15 && matches!(ci, c::J45) { Spec::Peds } else { CONDS[ci].spec };
            let fac = if at_hosp { p.hospital } else { pick_clinic(world, p, spec, 0) };
            p.conds.push(CondInst { c: ci as u8, onset, end, diagnosed, fac });
        }
    }
    // history of stroke / cancer before the period
    let age0 = p.age(PERIOD_START);
    if age0 >= 50 && rng.p(((age0 - 50) as f64 * 0.0015).min(0.05) * if p.female { 0.7 } else { 1.0 }) {
        let onset = PERIOD_START.add(-(rng.int(60, 3650) as i32));
        let fac = pick_clinic(world, p, Spec::Internal, 1);
        p.conds.push(CondInst { c: c::I63 as u8, onset, end: None, diagnosed: true, fac });
    }
    if age0 >= 45 && rng.p(((age0 - 45) as f64 * 0.001).min(0.04)) {
        let site = cancer_site(rng, p.female);
        let onset = PERIOD_START.add(-(rng.int(180, 3000) as i32));
        p.conds.push(CondInst { c: site as u8, onset, end: None, diagnosed: true, fac: p.hospital });
    }

    // --- employment at the start and over the period
    simulate_jobs(world, rng, p, kind, rel);

    // --- marriage (surname change)
    let in_couple = matches!(rel, "妻" | "夫") || (rel == "世帯主" && matches!(kind, hk::COUPLE_YOUNG | hk::COUPLE_OLD | hk::FAMILY | hk::THREE_GEN));
    if !in_couple && (23..=38).contains(&age0) && kind != hk::SINGLE_PARENT {
        let rate = if p.female { 0.07 } else { 0.06 };
        for fy in FIRST_FY..=LAST_FY {
            if rng.p(rate) {
                let d = fy_start(fy).add(rng.int(0, 364) as i32);
                if p.present(d) {
                    let changes = if p.female { rng.p(0.95) } else { rng.p(0.05) };
                    if changes {
                        let mut ns = names::pick_surname(rng.u());
                        if ns == p.surname {
                            ns = (ns + 1) % SURNAMES.len() as u16;
                        }
                        p.marriage = Some((d, ns));
                        if p.female && rng.p(0.5) {
                            // becomes dependent on the husband's employee insurance
                            let ins = if rng.p(0.6) { world.kyokai } else { world.kumiai[rng.int(0, world.kumiai.len() as i64 - 1) as usize] };
                            p.ext_sponsor = Some((d.add(rng.int(0, 40) as i32), ins));
                        }
                    }
                    if rng.p(0.45) && p.out_date.is_none_or(|o| o > d) {
                        // moves to the spouse's home outside the city
                        p.out_date = Some(d.add(rng.int(1, 60) as i32));
                    }
                    break;
                }
            }
        }
    }

    // --- yearly: events, death, care
    let mut care_level: Option<u8> = None;
    let mut next_renewal = PERIOD_START;
    // certification held at the start
    if age0 >= 65 || (age0 >= 40 && p.has(c::I63, PERIOD_START)) {
        let base = care_prevalence(age0);
        let mult = care_mult(p, PERIOD_START);
        if rng.p((base * mult).min(0.95)) {
            let level = initial_level(rng, p, PERIOD_START);
            let decided = PERIOD_START.add(-(rng.int(1, 330) as i32));
            let to = decided.add(365 * rng.int(1, 3) as i32);
            p.certs.push(Cert { app_type: 1, applied: decided.add(-30), decided, level, from: decided, to });
            care_level = Some(level);
            next_renewal = to;
        }
    }
    let mut cancer_dx = p.conds.iter().any(|ci| is_cancer(ci.c as usize));
    for fy in FIRST_FY..=LAST_FY {
        let ys = fy_start(fy);
        if !p.present(ys) && p.start() > ys.add(364) {
            continue;
        }
        if p.death.is_some() || p.end() < ys {
            break;
        }
        let age = p.age(ys).max(0);
        let a = age as f64;
        let male = !p.female;
        let mut extra_death: Option<Date> = None;
        let ht = p.has(c::I10, ys);
        let dm = p.has(c::E11, ys);
        // stroke
        let mut r = (-10.6 + 0.085 * a).exp() * if male { 1.4 } else { 1.0 } * if ht { 1.8 } else { 1.0 } * if dm { 1.6 } else { 1.0 } * if p.has(c::I48, ys) { 3.0 } else { 1.0 };
        if age < 35 {
            r *= 0.2;
        }
        if rng.p(r.min(0.2)) {
            let d = ys.add(rng.int(0, 364) as i32);
            add_event(world, rng, p, c::I63, d, (14, 45));
            if rng.p(0.12) {
                extra_death = Some(d.add(rng.int(2, 90) as i32));
            }
        }
        // hip fracture
        let r = (-15.2 + 0.14 * a).exp() * if male { 0.35 } else { 1.0 } * if p.has(c::M81, ys) { 2.0 } else { 1.0 };
        if age >= 50 && rng.p(r.min(0.08)) {
            let d = ys.add(rng.int(0, 364) as i32);
            add_event(world, rng, p, c::S72, d, (20, 50));
            if rng.p(0.06) {
                extra_death = extra_death.or(Some(d.add(rng.int(10, 300) as i32)));
            }
        }
        // myocardial infarction
        let r = (-11.8 + 0.08 * a).exp() * if male { 2.5 } else { 1.0 } * if p.has(c::I25, ys) { 3.0 } else { 1.0 } * if dm { 1.7 } else { 1.0 };
        if age >= 35 && rng.p(r.min(0.05)) {
            let d = ys.add(rng.int(0, 364) as i32);
            add_event(world, rng, p, c::I21, d, (7, 20));
            if rng.p(0.09) {
                extra_death = extra_death.or(Some(d.add(rng.int(0, 30) as i32)));
            }
            let fac = p.hospital;
            p.conds.push(CondInst { c: c::I25 as u8, onset: d.add(30), end: None, diagnosed: true, fac });
        }
        // pneumonia admission
        let r = (-11.2 + 0.1 * a).exp() * if p.has(c::J44, ys) { 3.0 } else { 1.0 } * if p.has(c::F03, ys) { 2.0 } else { 1.0 } + if age < 5 { 0.01 } else { 0.0 };
        if rng.p(r.min(0.2)) {
            let d = ys.add(rng.int(0, 364) as i32);
            add_event(world, rng, p, c::J18, d, (7, 25));
            if rng.p(if age >= 80 { 0.15 } else { 0.04 }) {
                extra_death = extra_death.or(Some(d.add(rng.int(3, 40) as i32)));
            }
        }
        // cancer
        let r = if male { (-10.9 + 0.1 * a).exp() } else { (-7.6 + 0.04 * a).exp() } * if p.smoker { 1.4 } else { 1.0 };
        if age >= 30 && rng.p(r.min(0.08)) {
            let site = cancer_site(rng, p.female);
            let d = ys.add(rng.int(0, 364) as i32);
            add_event(world, rng, p, site, d, (8, 22));
            let fatal = match site {
                c::C34 => 0.35,
                c::C22 => 0.30,
                c::C16 => 0.12,
                c::C18 => 0.08,
                c::C54 => 0.06,
                _ => 0.03,
            };
            if rng.p(fatal) {
                extra_death = extra_death.or(Some(d.add(rng.int(60, 700) as i32)));
            }
            cancer_dx = true;
        }
        // background mortality
        let mut mult = 1.0;
        for (cond, f) in [(c::I50, 1.8), (c::F03, 1.5), (c::J44, 1.4), (c::N18, 1.2), (c::E11, 1.1), (c::I63, 1.2)] {
            if p.has(cond, ys) {
                mult *= f;
            }
        }
        if cancer_dx {
            mult *= 1.3;
        }
        if p.smoker {
            mult *= 1.3;
        }
        if care_level.is_some_and(|l| l >= 4) {
            mult *= 1.5;
        }
        // the multipliers raise the average; scale back so overall mortality stays realistic
        let q = (0.45 * mortality(age, p.female) * mult).min(0.7);
        let mut death = if rng.p(q) { Some(ys.add(rng.int(0, 364) as i32)) } else { None };
        if let Some(e) = extra_death {
            death = Some(death.map_or(e, |d| d.min(e)));
        }

        // care certification: new, renewals, level changes
        if age >= 40 {
            let events_this_year: Vec<(usize, Date)> = p
                .admissions
                .iter()
                .filter(|a| a.start >= ys && a.start < ys.add(365))
                .map(|a| (a.c as usize, a.start))
                .collect();
            match care_level {
                None => {
                    let eligible = age >= 65 || p.has(c::I63, ys.add(364));
                    let base = care_incidence(age) * care_mult(p, ys.add(180));
                    let triggered = events_this_year.iter().find(|(ci, _)| matches!(*ci, c::I63 | c::S72)).copied();
                    let new = eligible && (rng.p(base.min(0.6)) || (triggered.is_some() && rng.p(if age >= 75 { 0.55 } else { 0.3 })));
                    if new {
                        let applied = triggered.map_or(ys.add(rng.int(0, 330) as i32), |(_, d)| d.add(rng.int(14, 60) as i32));
                        let decided = applied.add(rng.int(25, 45) as i32);
                        let level = initial_level(rng, p, decided);
                        let to = decided.add(if rng.p(0.7) { 182 } else { 365 });
                        p.certs.push(Cert { app_type: 0, applied, decided, level, from: applied, to });
                        care_level = Some(level);
                        next_renewal = to;
                    }
                }
                Some(level) => {
                    // level change after an event
                    if let Some((_, d)) = events_this_year.iter().find(|(ci, _)| matches!(*ci, c::I63 | c::S72 | c::J18)) {
                        let applied = d.add(rng.int(20, 60) as i32);
                        if applied < next_renewal && rng.p(0.5) {
                            let decided = applied.add(rng.int(25, 45) as i32);
                            let nl = (level + 1 + rng.p(0.3) as u8).min(6);
                            let to = decided.add(365);
                            p.certs.push(Cert { app_type: 2, applied, decided, level: nl, from: applied, to });
                            care_level = Some(nl);
                            next_renewal = to;
                        }
                    }
                }
            }
            // renewals falling in this fiscal year
            while let Some(level) = care_level {
                if next_renewal >= ys.add(365) || next_renewal > PERIOD_END {
                    break;
                }
                let from = next_renewal;
                let applied = from.add(-(rng.int(20, 50) as i32));
                let decided = from.add(-(rng.int(1, 15) as i32));
                let nl = match rng.weighted(&[0.1, 0.62, 0.28]) {
                    0 => level.saturating_sub(1),
                    1 => level,
                    _ => (level + 1).min(6),
                };
                let to = from.add(365 * rng.int(1, 3) as i32 - 1);
                p.certs.push(Cert { app_type: 1, applied, decided, level: nl, from, to });
                care_level = Some(nl);
                next_renewal = to.add(1);
            }
        }
        if let Some(d) = death {
            if p.present(d) || d >= p.start() {
                if p.out_date.is_none_or(|o| d < o) {
                    p.death = Some(d.min(PERIOD_END));
                    break;
                }
            }
        }
    }
    // incident chronic onsets after death/out are harmless (never observed)
    if let Some(d) = p.death {
        p.certs.retain(|c| c.applied < d);
        p.admissions.retain(|a| a.start <= d);
    }
}

fn shift_var(ci: usize) -> f64 {
    match ci {
        c::E11 => 0.55 * 0.55 + 0.25 * 0.25,
        c::I10 => 0.4 * 0.4 + 0.3 * 0.3,
        c::E78 => 0.09,
        c::J44 => 0.5,
        c::I25 | c::I50 | c::N18 => 0.18,
        _ => 0.0,
    }
}

fn rng_days(rng: &mut Rand, lo: i64, hi: i64) -> i32 {
    rng.int(lo, hi) as i32
}

pub(crate) fn is_cancer(ci: usize) -> bool {
    (c::C16..=c::C54).contains(&ci)
}

fn cancer_site(rng: &mut Rand, female: bool) -> usize {
    if female {
        [c::C50, c::C18, c::C16, c::C34, c::C22, c::C54][rng.weighted(&[0.35, 0.2, 0.12, 0.13, 0.05, 0.15])]
    } else {
        [c::C61, c::C16, c::C18, c::C34, c::C22][rng.weighted(&[0.25, 0.2, 0.2, 0.25, 0.1])]
    }
}

fn add_event(world: &World, rng: &mut Rand, p: &mut Person, ci: usize, d: Date, (lo, hi): (i64, i64)) {
    let days = rng_days(rng, lo, hi);
    let fac = if is_cancer(ci) {
        match rng.weighted(&[0.55, 0.15, 0.3]) {
            0 => world.ehr_hospitals[1],
            1 => world.ehr_hospitals[0],
            _ => p.hospital,
        }
    } else if rng.p(0.8) {
        p.hospital
    } else {
        world.ehr_hospitals[0]
    };
    p.admissions.push(Admission { c: ci as u8, fac, start: d, days });
    // the condition continues as follow-up (outpatient) after discharge
    let follow_fac = if is_cancer(ci) || ci == c::I63 { fac } else { pick_clinic(world, p, CONDS[ci].spec, 2) };
    let end = match ci {
        c::J18 => Some(d.add(days + 14)),
        c::S72 => Some(d.add(days + 120)),
        c::I21 => Some(d.add(days + 30)),
        _ => None,
    };
    p.conds.push(CondInst { c: ci as u8, onset: d, end, diagnosed: true, fac: follow_fac });
}

fn care_prevalence(age: i32) -> f64 {
    match age {
        ..=64 => 0.004,
        65..=69 => 0.03,
        70..=74 => 0.06,
        75..=79 => 0.12,
        80..=84 => 0.26,
        85..=89 => 0.48,
        _ => 0.70,
    }
}

fn care_incidence(age: i32) -> f64 {
    match age {
        ..=64 => 0.001,
        65..=69 => 0.008,
        70..=74 => 0.015,
        75..=79 => 0.035,
        80..=84 => 0.07,
        85..=89 => 0.12,
        _ => 0.18,
    }
}

fn care_mult(p: &Person, d: Date) -> f64 {
    let mut m = 1.0;
    if p.has(c::F03, d) {
        m *= 3.0;
    }
    if p.has(c::I63, d) {
        m *= 2.5;
    }
    if p.has(c::S72, d) || p.conds.iter().any(|ci| ci.c as usize == c::S72 && ci.onset <= d) {
        m *= 2.5;
    }
    if p.has(c::I50, d) {
        m *= 1.5;
    }
    m
}

/// Care levels 0..=6: 要支援1, 要支援2, 要介護1..5.
fn initial_level(rng: &mut Rand, p: &Person, d: Date) -> u8 {
    let severe = p.has(c::I63, d) || p.has(c::F03, d) || p.conds.iter().any(|ci| ci.c as usize == c::S72 && ci.onset <= d);
    let w = if severe { [0.06, 0.08, 0.2, 0.2, 0.17, 0.16, 0.13] } else { [0.16, 0.15, 0.22, 0.17, 0.12, 0.11, 0.07] };
    rng.weighted(&w) as u8
}

fn simulate_jobs(world: &World, rng: &mut Rand, p: &mut Person, kind: u8, rel: &str) {
    let age0 = p.age(PERIOD_START);
    let female = p.female;
    let p_emp = |age: i32| -> f64 {
        match (female, age) {
            (_, ..=17) => 0.0,
            (_, 18..=21) => 0.25,
            (false, 22..=59) => 0.86,
            (false, 60..=64) => 0.62,
            (false, 65..=69) => 0.33,
            (false, 70..=74) => 0.12,
            (true, 22..=59) => 0.6,
            (true, 60..=64) => 0.35,
            (true, 65..=69) => 0.18,
            (true, 70..=74) => 0.07,
            _ => 0.0,
        }
    };
    let mut pe = p_emp(age0);
    if female && rel == "妻" {
        pe *= 0.7;
    }
    if kind == hk::SINGLE_YOUNG || kind == hk::SINGLE_PARENT {
        pe = (pe * 1.15).min(0.95);
    }
    let pick_ins = |rng: &mut Rand| -> u8 {
        match rng.weighted(&[0.47, 0.38, 0.15]) {
            0 => world.kyokai,
            1 => world.kumiai[rng.int(0, world.kumiai.len() as i64 - 1) as usize],
            _ => world.kyosai[rng.int(0, world.kyosai.len() as i64 - 1) as usize],
        }
    };
    let mut cur: Option<(Date, u8)> = if rng.p(pe) { Some((PERIOD_START.add(-(rng.int(30, 5000) as i32)), pick_ins(rng))) } else { None };
    for fy in FIRST_FY..=LAST_FY {
        let ys = fy_start(fy);
        let age = p.age(ys);
        if age >= 75 {
            break;
        }
        let d = ys.add(rng.int(0, 364) as i32);
        match cur {
            Some((start, ins)) => {
                let retire = match age {
                    59..=60 => 0.25,
                    61..=64 => 0.12,
                    65..=69 => 0.25,
                    70.. => 0.35,
                    _ => 0.03,
                };
                if rng.p(retire) {
                    p.jobs.push(Job { start, end: d, insurer: ins });
                    cur = None;
                } else if rng.p(0.035) && p.jobs.len() < 6 {
                    // changes employer
                    p.jobs.push(Job { start, end: d, insurer: ins });
                    let gap = rng.int(0, 90) as i32;
                    cur = Some((d.add(gap), pick_ins(rng)));
                }
            }
            None => {
                let join = if (22..=59).contains(&age) { if female { 0.06 } else { 0.12 } } else if (18..=21).contains(&age) { 0.2 } else { 0.0 };
                if rng.p(join) && p.jobs.len() < 6 {
                    cur = Some((d, pick_ins(rng)));
                }
            }
        }
    }
    if let Some((start, ins)) = cur {
        p.jobs.push(Job { start, end: Date(i32::MAX / 2), insurer: ins });
    }
}

/// Insurance coverage on a date.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cov {
    /// Municipal National Health Insurance (household number, member suffix).
    Nhi,
    /// Late-stage elderly (75+) system: individual number.
    Koki,
    /// Employee insurance: insurer, owner key, suffix.
    Emp { insurer: u8, owner: u64, suffix: u8 },
}

/// Coverage of member `i` of household `hh` on date `d`.
pub(crate) fn coverage(hh: &Household, i: usize, d: Date) -> Cov {
    let p = &hh.members[i];
    if p.age(d) >= 75 {
        return Cov::Koki;
    }
    for (k, j) in p.jobs.iter().enumerate() {
        if j.start <= d && d < j.end {
            return Cov::Emp { insurer: j.insurer, owner: p.pidx * 8 + k as u64, suffix: 1 };
        }
    }
    if let Some((from, ins)) = p.ext_sponsor {
        if d >= from {
            return Cov::Emp { insurer: ins, owner: p.pidx * 8 + 7, suffix: 2 };
        }
    }
    let dependent_type = match p.rel {
        "妻" | "夫" => p.jobs.is_empty(),
        "子" => p.age(d) < 23 || (p.jobs.is_empty() && p.age(d) < 30 && hash(&[p.pidx, 5]) % 3 == 0),
        _ => false,
    };
    if dependent_type {
        // sponsor: head first, then the head's spouse
        for (si, s) in hh.members.iter().enumerate() {
            if si == i || !matches!(s.rel, "世帯主" | "妻" | "夫") || s.age(d) >= 75 {
                continue;
            }
            if p.rel != "子" && s.rel != "世帯主" {
                continue;
            }
            if !s.present(d) && s.death.is_some_and(|x| x <= d) {
                continue;
            }
            for (k, j) in s.jobs.iter().enumerate() {
                if j.start <= d && d < j.end {
                    return Cov::Emp { insurer: j.insurer, owner: s.pidx * 8 + k as u64, suffix: 2 + i as u8 };
                }
            }
        }
    }
    Cov::Nhi
}

/// Deterministic per-(person, purpose) uniform draw, independent of the main stream.
pub(crate) fn noise_u(seed: u64, pidx: u64, salt: u64) -> f64 {
    unit(hash(&[seed, pidx, salt]))
}
