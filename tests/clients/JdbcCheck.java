import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.logging.ConsoleHandler;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * pgjdbc compatibility checks against a running Kura (pgjdbc is what DBeaver and Metabase use).
 *
 *   javac -cp /usr/share/java/postgresql.jar -d OUT JdbcCheck.java
 *   java -cp OUT:/usr/share/java/postgresql.jar JdbcCheck PORT USER PASSWORD [ANA_PASSWORD]
 *
 * Expects the fixture clients.py creates (claims.medical with one row, the view claims.v, user ana
 * who may read only claims.v). Prints one line per check, the server's SQLSTATE and message for
 * each failure, and "N passed, N failed" last; exits 1 if any check failed. Set KURA_JDBC_TRACE=1
 * to have pgjdbc log every message it sends (the SQL of metadata calls included).
 */
public class JdbcCheck {
    interface Body {
        void run() throws Exception;
    }

    static String url;
    static String user;
    static String password;
    static String anaPassword;
    static int passed = 0;
    static final List<String> failed = new ArrayList<>();
    static String lastSql = null;

    static final String SELECT_ROW = "SELECT id, name, points, day, amount, ok, at FROM claims.medical";
    static final String[] COLUMNS = {"id", "name", "points", "day", "amount", "ok", "at"};
    static final String[] TYPE_NAMES = {"int8", "text", "int4", "date", "numeric", "bool", "timestamp"};
    static final int[] JDBC_TYPES = {Types.BIGINT, Types.VARCHAR, Types.INTEGER, Types.DATE, Types.NUMERIC, Types.BIT,
        Types.TIMESTAMP};

    static void check(String name, Body body) {
        lastSql = null;
        try {
            body.run();
            passed++;
            System.out.println("ok    [jdbc] " + name);
        } catch (Throwable t) {
            failed.add(name);
            System.out.println("FAIL  [jdbc] " + name);
            if (lastSql != null) {
                System.out.println("      sql:   " + lastSql.replaceAll("\\s+", " "));
            }
            System.out.println("      error: " + describe(t).replace("\n", "\n             "));
            if (System.getenv("KURA_JDBC_VERBOSE") != null) {
                t.printStackTrace(System.out);
            }
        }
    }

    static String describe(Throwable t) {
        if (t instanceof SQLException) {
            SQLException e = (SQLException) t;
            return "SQLSTATE " + e.getSQLState() + ": " + e.getMessage();
        }
        return t.getClass().getSimpleName() + ": " + t.getMessage();
    }

    static void expect(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }

    static void expectEq(Object got, Object want, String what) {
        if (got == null ? want != null : !got.equals(want)) {
            throw new AssertionError(what + ": got " + got + ", want " + want);
        }
    }

    static Connection connect() throws SQLException {
        return connect(user, password);
    }

    static Connection connect(String u, String p) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", u);
        props.setProperty("password", p);
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        return DriverManager.getConnection(url, props);
    }

    static String sql(String s) {
        lastSql = s;
        return s;
    }

    static void expectSqlState(Connection c, String query, String state) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.executeQuery(sql(query)).close();
        } catch (SQLException e) {
            expectEq(e.getSQLState(), state, "SQLSTATE of " + query + " (" + e.getMessage() + ")");
            return;
        }
        throw new AssertionError("expected SQLSTATE " + state + ", the statement succeeded: " + query);
    }

    static void checkRow(ResultSet rs) throws SQLException {
        expect(rs.next(), "no row");
        expectEq(rs.getLong(1), 1L, "id");
        expectEq(rs.getString(2), "ヤマダ", "name");
        expectEq(rs.getInt(3), 100, "points");
        expectEq(rs.getObject(4, LocalDate.class), LocalDate.of(2024, 4, 1), "day");
        expectEq(rs.getBigDecimal(5), new BigDecimal("12.50"), "amount");
        expectEq(rs.getBoolean(6), true, "ok");
        expectEq(rs.getObject(7, LocalDateTime.class), LocalDateTime.of(2024, 4, 1, 9, 0), "at");
        expect(!rs.next(), "more than one row");
    }

    static List<String> column(ResultSet rs, String name) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            out.add(rs.getString(name));
        }
        rs.close();
        return out;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: JdbcCheck PORT USER PASSWORD [ANA_PASSWORD]");
            System.exit(2);
        }
        url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/kura?sslmode=disable";
        user = args[1];
        password = args[2];
        anaPassword = args.length > 3 ? args[3] : "ana-pw";
        if (System.getenv("KURA_JDBC_TRACE") != null) {
            Logger log = Logger.getLogger("org.postgresql");
            ConsoleHandler h = new ConsoleHandler();
            h.setLevel(Level.FINEST);
            log.addHandler(h);
            log.setLevel(Level.FINEST);
        }

        check("connect", () -> {
            try (Connection c = connect()) {
                expect(c.isValid(5), "connection not valid");
            }
        });

        check("Statement: SELECT 1", () -> {
            try (Connection c = connect(); Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery(sql("SELECT 1"))) {
                expect(rs.next(), "no row");
                expectEq(rs.getInt(1), 1, "value");
            }
        });

        check("Statement: row values and ResultSetMetaData types", () -> {
            try (Connection c = connect(); Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery(sql(SELECT_ROW))) {
                ResultSetMetaData md = rs.getMetaData();
                expectEq(md.getColumnCount(), COLUMNS.length, "column count");
                for (int i = 0; i < COLUMNS.length; i++) {
                    expectEq(md.getColumnName(i + 1), COLUMNS[i], "column name " + (i + 1));
                    expectEq(md.getColumnTypeName(i + 1), TYPE_NAMES[i], "type name of " + COLUMNS[i]);
                    expectEq(md.getColumnType(i + 1), JDBC_TYPES[i], "java.sql.Types of " + COLUMNS[i]);
                }
                checkRow(rs);
            }
        });

        check("PreparedStatement: long/String/int/LocalDate/BigDecimal/boolean parameters", () -> {
            try (Connection c = connect(); PreparedStatement ps = c.prepareStatement(sql(SELECT_ROW
                    + " WHERE id = ? AND name = ? AND points = ? AND day = ? AND amount = ? AND ok = ?"))) {
                ps.setLong(1, 1L);
                ps.setString(2, "ヤマダ");
                ps.setInt(3, 100);
                ps.setObject(4, LocalDate.of(2024, 4, 1));
                ps.setBigDecimal(5, new BigDecimal("12.50"));
                ps.setBoolean(6, true);
                try (ResultSet rs = ps.executeQuery()) {
                    checkRow(rs);
                }
            }
        });

        check("PreparedStatement: parameters round-trip with casts, setNull", () -> {
            try (Connection c = connect(); PreparedStatement ps = c.prepareStatement(
                    sql("SELECT ?::bigint, ?::text, ?::date, ?::numeric, ?::boolean, ?::int"))) {
                ps.setLong(1, 42L);
                ps.setString(2, "テキスト");
                ps.setObject(3, LocalDate.of(2024, 2, 29));
                ps.setBigDecimal(4, new BigDecimal("3.14"));
                ps.setBoolean(5, false);
                ps.setNull(6, Types.INTEGER);
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next(), "no row");
                    expectEq(rs.getLong(1), 42L, "bigint");
                    expectEq(rs.getString(2), "テキスト", "text");
                    expectEq(rs.getObject(3, LocalDate.class), LocalDate.of(2024, 2, 29), "date");
                    expect(rs.getBigDecimal(4).compareTo(new BigDecimal("3.14")) == 0, "numeric " + rs.getBigDecimal(4));
                    expectEq(rs.getBoolean(5), false, "boolean");
                    expectEq(rs.getObject(6), null, "null int");
                }
            }
        });

        check("'3.14'::numeric keeps the scale of its input (BigDecimal 3.14, not 3.1400000000)", () -> {
            try (Connection c = connect(); PreparedStatement ps = c.prepareStatement(sql("SELECT ?::numeric, 3.14::numeric"))) {
                ps.setBigDecimal(1, new BigDecimal("3.14"));
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next(), "no row");
                    expectEq(rs.getBigDecimal(1), new BigDecimal("3.14"), "parameter cast to numeric");
                    expectEq(rs.getBigDecimal(2), new BigDecimal("3.14"), "literal cast to numeric");
                }
            }
        });

        check("PreparedStatement reused 8 times (pgjdbc switches to a named server statement after 5)", () -> {
            try (Connection c = connect(); PreparedStatement ps = c.prepareStatement(
                    sql("SELECT name FROM claims.medical WHERE id = ?"))) {
                for (int i = 0; i < 8; i++) {
                    ps.setLong(1, 1L);
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "no row on execution " + (i + 1));
                        expectEq(rs.getString(1), "ヤマダ", "name on execution " + (i + 1));
                    }
                }
            }
        });

        check("missing table -> SQLSTATE 42P01; connection usable after", () -> {
            try (Connection c = connect()) {
                expectSqlState(c, "SELECT * FROM claims.nope", "42P01");
                try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql("SELECT 2"))) {
                    expect(rs.next() && rs.getInt(1) == 2, "SELECT 2 after the error");
                }
            }
        });

        check("setAutoCommit(false): query, commit(), rollback()", () -> {
            try (Connection c = connect()) {
                c.setAutoCommit(false);
                try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql(SELECT_ROW))) {
                    checkRow(rs);
                }
                c.commit();
                try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql("SELECT 1"))) {
                    expect(rs.next(), "no row");
                }
                c.rollback();
            }
        });

        check("Metabase-style read-only transaction: setReadOnly(true) + setAutoCommit(false) (BEGIN READ ONLY)", () -> {
            try (Connection c = connect()) {
                c.setReadOnly(true);
                c.setAutoCommit(false);
                try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql(SELECT_ROW))) {
                    checkRow(rs);
                }
                c.commit();
            }
        });

        check("Metabase connection test: SELECT 1 and show timezone; as PreparedStatements", () -> {
            try (Connection c = connect()) {
                for (String q : new String[] {"SELECT 1", "show timezone;"}) {
                    try (PreparedStatement ps = c.prepareStatement(sql(q)); ResultSet rs = ps.executeQuery()) {
                        expect(rs.next() && rs.getString(1) != null, "no value from " + q);
                    }
                }
            }
        });

        check("getTransactionIsolation() (SHOW TRANSACTION ISOLATION LEVEL; DBeaver asks on connect)", () -> {
            try (Connection c = connect()) {
                expectEq(c.getTransactionIsolation(), Connection.TRANSACTION_READ_COMMITTED, "isolation");
            }
        });

        check("DatabaseMetaData: product name and version", () -> {
            try (Connection c = connect()) {
                DatabaseMetaData md = c.getMetaData();
                expectEq(md.getDatabaseProductName(), "PostgreSQL", "product name");
                expect(md.getDatabaseMajorVersion() >= 10, "major version " + md.getDatabaseMajorVersion());
            }
        });

        check("DatabaseMetaData.getSchemas()", () -> {
            try (Connection c = connect()) {
                List<String> schemas = column(c.getMetaData().getSchemas(), "TABLE_SCHEM");
                expect(schemas.contains("claims") && schemas.contains("public"), "schemas " + schemas);
            }
        });

        check("DatabaseMetaData.getTables(null, \"claims\", \"%\", null)", () -> {
            try (Connection c = connect()) {
                List<String> got = new ArrayList<>();
                try (ResultSet rs = c.getMetaData().getTables(null, "claims", "%", null)) {
                    while (rs.next()) {
                        got.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + ":" + rs.getString("TABLE_TYPE"));
                    }
                }
                expectEq(got.toString(), "[claims.medical:TABLE, claims.v:VIEW]", "tables");
            }
        });

        check("DatabaseMetaData.getTables(..., new String[]{\"TABLE\", \"VIEW\"}) (Metabase, DBeaver generic)", () -> {
            try (Connection c = connect()) {
                List<String> got = column(c.getMetaData().getTables(null, "claims", "%", new String[] {"TABLE", "VIEW"}),
                        "TABLE_NAME");
                expectEq(got.toString(), "[medical, v]", "tables");
            }
        });

        check("DatabaseMetaData.getColumns(null, \"claims\", \"medical\", \"%\"): names and types", () -> {
            try (Connection c = connect()) {
                List<String> got = new ArrayList<>();
                List<String> want = new ArrayList<>();
                try (ResultSet rs = c.getMetaData().getColumns(null, "claims", "medical", "%")) {
                    while (rs.next()) {
                        got.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME") + ":" + rs.getInt("DATA_TYPE")
                                + ":" + rs.getInt("NULLABLE") + ":" + rs.getInt("ORDINAL_POSITION"));
                        if ("amount".equals(rs.getString("COLUMN_NAME"))) {
                            expectEq(rs.getInt("COLUMN_SIZE"), 10, "numeric precision");
                            expectEq(rs.getInt("DECIMAL_DIGITS"), 2, "numeric scale");
                        }
                    }
                }
                for (int i = 0; i < COLUMNS.length; i++) {
                    int nullable = i == 0 ? DatabaseMetaData.columnNoNulls : DatabaseMetaData.columnNullable;
                    want.add(COLUMNS[i] + ":" + TYPE_NAMES[i] + ":" + JDBC_TYPES[i] + ":" + nullable + ":" + (i + 1));
                }
                expectEq(got, want, "columns (name:type:java.sql.Types:nullable:position)");
            }
        });

        check("DatabaseMetaData.getColumns(null, \"claims\", \"v\", null)", () -> {
            try (Connection c = connect()) {
                List<String> got = column(c.getMetaData().getColumns(null, "claims", "v", null), "COLUMN_NAME");
                expectEq(got.toString(), "[id, points]", "view columns");
            }
        });

        check("DatabaseMetaData.getPrimaryKeys(null, \"claims\", \"medical\") (empty)", () -> {
            try (Connection c = connect()) {
                expectEq(column(c.getMetaData().getPrimaryKeys(null, "claims", "medical"), "COLUMN_NAME").size(), 0,
                        "primary keys");
            }
        });

        check("DatabaseMetaData.getImportedKeys(null, \"claims\", \"medical\") (empty)", () -> {
            try (Connection c = connect()) {
                expectEq(column(c.getMetaData().getImportedKeys(null, "claims", "medical"), "FKCOLUMN_NAME").size(), 0,
                        "imported keys");
            }
        });

        check("DatabaseMetaData.getIndexInfo(null, \"claims\", \"medical\", false, true) (empty)", () -> {
            try (Connection c = connect()) {
                expectEq(column(c.getMetaData().getIndexInfo(null, "claims", "medical", false, true), "INDEX_NAME").size(), 0,
                        "indexes");
            }
        });

        check("DatabaseMetaData.getSQLKeywords() and getTableTypes() (DBeaver dialect setup)", () -> {
            try (Connection c = connect()) {
                DatabaseMetaData md = c.getMetaData();
                String kw = md.getSQLKeywords();
                expect(kw != null && kw.contains("analyze"), "keywords " + kw);
                expect(column(md.getTableTypes(), "TABLE_TYPE").contains("VIEW"), "table types");
            }
        });

        check("as ana: getTables(null, \"claims\", \"%\", null) lists only v", () -> {
            try (Connection c = connect("ana", anaPassword)) {
                List<String> got = column(c.getMetaData().getTables(null, "claims", "%", null), "TABLE_NAME");
                expectEq(got.toString(), "[v]", "tables visible to ana");
            }
        });

        if (!failed.isEmpty()) {
            System.out.println("\nfailed checks:");
            for (String f : failed) {
                System.out.println("  [jdbc] " + f);
            }
        }
        System.out.println("\n" + passed + " passed, " + failed.size() + " failed");
        System.exit(failed.isEmpty() ? 0 : 1);
    }
}
