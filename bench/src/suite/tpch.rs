//! TPC-H: the eight tables as Kura creates them. The 22 queries are `bench/queries/tpch/*.sql`,
//! with the specification's validation parameters (TPC-H 3.0.1, section 2.4); Q15's view is
//! written as a common table expression so that each query is one statement, and Q11's
//! fraction is 0.0001 / SF as the specification says.

/// Tables with Kura's column types, matching what `tpchgen-cli` writes.
pub const TABLES: &[(&str, &str)] = &[
    (
        "nation",
        "n_nationkey BIGINT NOT NULL, n_name TEXT, n_regionkey BIGINT, n_comment TEXT",
    ),
    ("region", "r_regionkey BIGINT NOT NULL, r_name TEXT, r_comment TEXT"),
    (
        "part",
        "p_partkey BIGINT NOT NULL, p_name TEXT, p_mfgr TEXT, p_brand TEXT, p_type TEXT, p_size INT, \
         p_container TEXT, p_retailprice DECIMAL(15,2), p_comment TEXT",
    ),
    (
        "supplier",
        "s_suppkey BIGINT NOT NULL, s_name TEXT, s_address TEXT, s_nationkey BIGINT, s_phone TEXT, \
         s_acctbal DECIMAL(15,2), s_comment TEXT",
    ),
    (
        "partsupp",
        "ps_partkey BIGINT NOT NULL, ps_suppkey BIGINT NOT NULL, ps_availqty INT, ps_supplycost DECIMAL(15,2), \
         ps_comment TEXT",
    ),
    (
        "customer",
        "c_custkey BIGINT NOT NULL, c_name TEXT, c_address TEXT, c_nationkey BIGINT, c_phone TEXT, \
         c_acctbal DECIMAL(15,2), c_mktsegment TEXT, c_comment TEXT",
    ),
    (
        "orders",
        "o_orderkey BIGINT NOT NULL, o_custkey BIGINT, o_orderstatus TEXT, o_totalprice DECIMAL(15,2), \
         o_orderdate DATE, o_orderpriority TEXT, o_clerk TEXT, o_shippriority INT, o_comment TEXT",
    ),
    (
        "lineitem",
        "l_orderkey BIGINT NOT NULL, l_partkey BIGINT, l_suppkey BIGINT, l_linenumber INT, \
         l_quantity DECIMAL(15,2), l_extendedprice DECIMAL(15,2), l_discount DECIMAL(15,2), l_tax DECIMAL(15,2), \
         l_returnflag TEXT, l_linestatus TEXT, l_shipdate DATE, l_commitdate DATE, l_receiptdate DATE, \
         l_shipinstruct TEXT, l_shipmode TEXT, l_comment TEXT",
    ),
];

/// Query text for scale factor `sf`.
pub fn query_text(sql: &str, sf: f64) -> String {
    sql.replace("{fraction}", &format!("{}", 0.0001 / sf))
}
