//! Generate a data set from the command line: `gen PERSONS SEED OUT_DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let persons: u64 = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let seed: u64 = args.get(2).map_or(Ok(42), |s| s.parse())?;
    let out_dir = args.get(3).map_or_else(|| "/tmp/kura-gen".into(), Into::into);
    let config = kura_datagen::Config { persons, seed, out_dir, progress: std::env::var_os("NO_PROGRESS").is_none(), receipts: false };
    let summary = kura_datagen::generate(&config)?;
    for f in &summary.files {
        println!("{:<28} {:>12} rows {:>14} bytes  {:?}", f.name, f.rows, f.bytes, f.encoding);
    }
    println!(
        "{} persons, {} households, {:.1} MB in {:.2?}",
        summary.persons,
        summary.households,
        summary.total_bytes() as f64 / 1e6,
        summary.elapsed
    );
    Ok(())
}
