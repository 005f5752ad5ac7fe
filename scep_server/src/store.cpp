#include "pkisim/scep/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace pkisim::scep {

namespace {

std::int64_t to_ms(time_point t) {
    return t.time_since_epoch().count();
}
time_point from_ms(std::int64_t v) {
    return time_point{timers::duration{v}};
}

// Prepared statements of each open database, kept for reuse: preparing the same SQL again for
// every call was ~4 % of the server's CPU per enrollment (issue 12 §3). A statement is taken
// (or prepared when none of that text is idle), and given back reset, its bindings cleared;
// store::~store finalizes a database's statements before it closes it.
class statement_cache {
  public:
    sqlite3_stmt* take(sqlite3* db, const char* sql) {
        {
            const std::lock_guard lock{mutex_};
            auto it = idle_.find(key{db, sql});
            if (it != idle_.end() && !it->second.empty()) {
                sqlite3_stmt* st = it->second.back();
                it->second.pop_back();
                return st;
            }
        }
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
            sqlite3_finalize(st);
            throw store_error(fmt::format("sqlite prepare: {}", sqlite3_errmsg(db)));
        }
        return st;
    }
    // `sql`: the text it was taken with (sqlite3_sql may differ from it, e.g. past a ';').
    void give(sqlite3* db, std::string sql, sqlite3_stmt* st) {
        sqlite3_reset(st);  // its return repeats the last step's error, already reported
        sqlite3_clear_bindings(st);
        const std::lock_guard lock{mutex_};
        auto& list = idle_[key{db, std::move(sql)}];
        if (list.size() < max_idle_per_text) {
            list.push_back(st);
            return;
        }
        sqlite3_finalize(st);
    }
    void drop(sqlite3* db) {
        const std::lock_guard lock{mutex_};
        for (auto it = idle_.begin(); it != idle_.end();) {
            if (it->first.first != db) {
                ++it;
                continue;
            }
            for (sqlite3_stmt* st : it->second)
                sqlite3_finalize(st);
            it = idle_.erase(it);
        }
    }

  private:
    static constexpr std::size_t max_idle_per_text = 4;
    using key = std::pair<sqlite3*, std::string>;
    std::mutex mutex_;
    std::map<key, std::vector<sqlite3_stmt*>> idle_;
};

statement_cache& statements() {
    static statement_cache cache;
    return cache;
}

// One prepared statement, from the database's statement cache and back to it on scope exit.
class statement {
  public:
    statement(sqlite3* db, const char* sql)
        : db_(db), sql_(sql), stmt_(statements().take(db, sql)) {}
    ~statement() { statements().give(db_, std::move(sql_), stmt_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    statement& bind(int i, std::int64_t v) {
        check(sqlite3_bind_int64(stmt_, i, v));
        return *this;
    }
    statement& bind(int i, std::string_view v) {
        check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    statement& bind(int i, const bytes& v) {
        // An empty vector has no data pointer; sqlite would store NULL.
        if (v.empty()) {
            check(sqlite3_bind_zeroblob(stmt_, i, 0));
            return *this;
        }
        check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    statement& bind_null(int i) {
        check(sqlite3_bind_null(stmt_, i));
        return *this;
    }
    // true = a row is available.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW)
            return true;
        if (rc == SQLITE_DONE)
            return false;
        throw store_error(fmt::format("sqlite step: {}", sqlite3_errmsg(db_)));
    }
    std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    std::string text(int col) const {
        const auto* p = sqlite3_column_text(stmt_, col);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string{};
    }
    bytes blob(int col) const {
        const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
        const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col));
        return p ? bytes(p, p + n) : bytes{};
    }

  private:
    void check(int rc) {
        if (rc != SQLITE_OK)
            throw store_error(fmt::format("sqlite bind: {}", sqlite3_errmsg(db_)));
    }
    sqlite3* db_;
    std::string sql_;
    sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when an exception leaves the scope. Inside an open
// transaction (store::transact) it is a SAVEPOINT instead, so that a rollover's serial, shadow
// certificate and CA generation commit together or not at all.
class transaction {
  public:
    explicit transaction(sqlite3* db) : db_(db), nested_(sqlite3_get_autocommit(db) == 0) {
        run(nested_ ? "SAVEPOINT pkisim_nested" : "BEGIN IMMEDIATE");
    }
    ~transaction() {
        if (done_)
            return;
        if (nested_) {
            sqlite3_exec(db_, "ROLLBACK TO pkisim_nested", nullptr, nullptr, nullptr);
            sqlite3_exec(db_, "RELEASE pkisim_nested", nullptr, nullptr, nullptr);
        } else {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        }
    }
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    void commit() {
        run(nested_ ? "RELEASE pkisim_nested" : "COMMIT");
        done_ = true;
    }

  private:
    void run(const char* sql) {
        // A cached statement (statement_cache): BEGIN and COMMIT come once per enrollment batch.
        try {
            statement s{db_, sql};
            s.step();
        } catch (const store_error&) {
            throw store_error(fmt::format("sqlite {}: {}", sql, sqlite3_errmsg(db_)));
        }
    }
    sqlite3* db_;
    bool nested_;
    bool done_ = false;
};

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS serial_counter (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
INSERT OR IGNORE INTO serial_counter (id, last) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS ca_generations (
  id INTEGER PRIMARY KEY AUTOINCREMENT, cert_der BLOB NOT NULL, key_pem TEXT NOT NULL,
  state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT, transaction_id TEXT NOT NULL,
  signer_key_hash TEXT NOT NULL, signer_cert_hash TEXT NOT NULL, state TEXT NOT NULL,
  csr_der BLOB NOT NULL, subject TEXT NOT NULL, fingerprint TEXT NOT NULL,
  renewal INTEGER NOT NULL, ca_generation INTEGER NOT NULL,
  created INTEGER NOT NULL, expires INTEGER NOT NULL, serial INTEGER);
CREATE INDEX IF NOT EXISTS requests_tid ON requests (transaction_id);
CREATE TABLE IF NOT EXISTS certificates (
  serial INTEGER PRIMARY KEY, der BLOB NOT NULL, subject TEXT NOT NULL,
  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, revoked_at INTEGER,
  request_id INTEGER);
CREATE TABLE IF NOT EXISTS passwords (
  password TEXT PRIMARY KEY, expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
)sql";

request_state parse_request_state(std::string_view s) {
    if (s == "granted")
        return request_state::granted;
    if (s == "rejected")
        return request_state::rejected;
    if (s == "issued")
        return request_state::issued;
    if (s == "expired")
        return request_state::expired;
    return request_state::pending;
}
ca_state parse_ca_state(std::string_view s) {
    if (s == "shadow")
        return ca_state::shadow;
    if (s == "archived")
        return ca_state::archived;
    if (s == "cancelled")
        return ca_state::cancelled;
    return ca_state::active;
}

constexpr const char* request_columns =
    "id, transaction_id, signer_key_hash, signer_cert_hash, state, csr_der, subject, "
    "fingerprint, renewal, ca_generation, created, expires, serial";

request_record read_request(const statement& s) {
    request_record r;
    r.id = s.int64(0);
    r.transaction_id = s.text(1);
    r.signer_key_hash = s.text(2);
    r.signer_cert_hash = s.text(3);
    r.state = parse_request_state(s.text(4));
    r.csr_der = s.blob(5);
    r.subject = s.text(6);
    r.fingerprint = s.text(7);
    r.renewal = s.int64(8) != 0;
    r.ca_generation = static_cast<int>(s.int64(9));
    r.created = from_ms(s.int64(10));
    r.expires = from_ms(s.int64(11));
    if (!s.is_null(12))
        r.serial = static_cast<std::uint64_t>(s.int64(12));
    return r;
}

constexpr const char* certificate_columns =
    "serial, der, subject, not_before, not_after, revoked_at, request_id, revocation_reason";

certificate_record read_certificate(const statement& s) {
    certificate_record c;
    c.serial = static_cast<std::uint64_t>(s.int64(0));
    c.der = s.blob(1);
    c.subject = s.text(2);
    c.not_before = from_ms(s.int64(3));
    c.not_after = from_ms(s.int64(4));
    if (!s.is_null(5))
        c.revoked_at = from_ms(s.int64(5));
    if (!s.is_null(6))
        c.request_id = s.int64(6);
    if (!s.is_null(7))
        c.revocation_reason = static_cast<int>(s.int64(7));
    return c;
}

}  // namespace

std::string_view to_string(request_state s) noexcept {
    switch (s) {
        case request_state::pending:
            return "pending";
        case request_state::granted:
            return "granted";
        case request_state::rejected:
            return "rejected";
        case request_state::issued:
            return "issued";
        case request_state::expired:
            return "expired";
    }
    return "pending";
}

std::string_view to_string(ca_state s) noexcept {
    switch (s) {
        case ca_state::active:
            return "active";
        case ca_state::shadow:
            return "shadow";
        case ca_state::archived:
            return "archived";
        case ca_state::cancelled:
            return "cancelled";
    }
    return "active";
}

store::store(const std::filesystem::path& file) {
    // Create the file 0600 ourselves: sqlite would use the umask (the CA key lives in it).
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        throw store_error(fmt::format("cannot open {}", file.string()));
    ::fchmod(fd, 0600);
    ::close(fd);
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw store_error(fmt::format("cannot open {}: {}", file.string(), msg));
    }
    try {
        sqlite3_busy_timeout(db_, 5000);
        exec("PRAGMA journal_mode=WAL");
        // Durable at COMMIT: a certificate a client received survives kill -9 and power loss.
        exec("PRAGMA synchronous=FULL");
        exec(schema);
        // Issue 11 §2.9: the revocation reason, added to databases made before it existed.
        bool has_reason = false;
        {
            statement s{db_,
                        "SELECT 1 FROM pragma_table_info('certificates') "
                        "WHERE name = 'revocation_reason'"};
            has_reason = s.step();
        }
        if (!has_reason)
            exec("ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER");
    } catch (...) {
        // Not open after all: the destructor will not run.
        statements().drop(db_);
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

store::~store() {
    statements().drop(db_);  // sqlite3_close refuses to close with statements not finalized
    sqlite3_close(db_);
}

bool store::in_transaction() const {
    return sqlite3_get_autocommit(db_) == 0;
}

void store::transact(const std::function<void()>& body) {
    transaction t{db_};
    body();
    t.commit();
}

void store::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "?";
        sqlite3_free(err);
        throw store_error(fmt::format("sqlite: {}", msg));
    }
}

std::optional<std::string> store::meta(std::string_view key) {
    statement s{db_, "SELECT value FROM meta WHERE key = ?"};
    s.bind(1, key);
    if (s.step())
        return s.text(0);
    return std::nullopt;
}

void store::set_meta(std::string_view key, std::string_view value) {
    statement s{db_,
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value"};
    s.bind(1, key).bind(2, value);
    s.step();
}

std::vector<ca_generation_record> store::ca_generations() {
    statement s{db_, "SELECT id, cert_der, key_pem, state FROM ca_generations ORDER BY id"};
    std::vector<ca_generation_record> out;
    while (s.step()) {
        out.push_back(
            {static_cast<int>(s.int64(0)), s.blob(1), s.text(2), parse_ca_state(s.text(3))});
    }
    return out;
}

int store::add_ca_generation(const bytes& cert_der, std::string_view key_pem, ca_state state) {
    statement s{db_, "INSERT INTO ca_generations (cert_der, key_pem, state) VALUES (?, ?, ?)"};
    s.bind(1, cert_der).bind(2, key_pem).bind(3, to_string(state));
    s.step();
    return static_cast<int>(sqlite3_last_insert_rowid(db_));
}

void store::set_ca_state(int id, ca_state state) {
    statement s{db_, "UPDATE ca_generations SET state = ? WHERE id = ?"};
    s.bind(1, to_string(state)).bind(2, std::int64_t{id});
    s.step();
}

std::uint64_t store::last_serial() {
    statement s{db_, "SELECT last FROM serial_counter WHERE id = 1"};
    return s.step() ? static_cast<std::uint64_t>(s.int64(0)) : 0;
}

std::uint64_t store::take_serial() {
    transaction t{db_};
    const std::uint64_t serial = last_serial() + 1;
    statement u{db_, "UPDATE serial_counter SET last = ? WHERE id = 1"};
    u.bind(1, static_cast<std::int64_t>(serial));
    u.step();
    t.commit();
    return serial;
}

std::uint64_t store::issue(std::optional<std::int64_t> request_id,
                           const std::function<built_certificate(std::uint64_t)>& build) {
    transaction t{db_};
    const std::uint64_t serial = last_serial() + 1;
    const built_certificate cert = build(serial);
    {
        statement u{db_, "UPDATE serial_counter SET last = ? WHERE id = 1"};
        u.bind(1, static_cast<std::int64_t>(serial));
        u.step();
    }
    {
        statement i{db_,
                    "INSERT INTO certificates (serial, der, subject, not_before, not_after, "
                    "request_id) VALUES (?, ?, ?, ?, ?, ?)"};
        i.bind(1, static_cast<std::int64_t>(serial))
            .bind(2, cert.der)
            .bind(3, cert.subject)
            .bind(4, to_ms(cert.not_before))
            .bind(5, to_ms(cert.not_after));
        if (request_id) {
            i.bind(6, *request_id);
        } else {
            i.bind_null(6);
        }
        i.step();
    }
    if (request_id) {
        statement r{db_, "UPDATE requests SET state = 'issued', serial = ? WHERE id = ?"};
        r.bind(1, static_cast<std::int64_t>(serial)).bind(2, *request_id);
        r.step();
    }
    t.commit();
    return serial;
}

std::optional<certificate_record> store::certificate(std::uint64_t serial) {
    statement s{
        db_,
        fmt::format("SELECT {} FROM certificates WHERE serial = ?", certificate_columns).c_str()};
    s.bind(1, static_cast<std::int64_t>(serial));
    if (s.step())
        return read_certificate(s);
    return std::nullopt;
}

std::vector<certificate_record> store::certificates() {
    statement s{
        db_,
        fmt::format("SELECT {} FROM certificates ORDER BY serial", certificate_columns).c_str()};
    std::vector<certificate_record> out;
    while (s.step())
        out.push_back(read_certificate(s));
    return out;
}

std::vector<certificate_record> store::revoked() {
    statement s{db_, fmt::format("SELECT {} FROM certificates WHERE revoked_at IS NOT NULL "
                                 "ORDER BY serial",
                                 certificate_columns)
                         .c_str()};
    std::vector<certificate_record> out;
    while (s.step())
        out.push_back(read_certificate(s));
    return out;
}

bool store::revoke(std::uint64_t serial, time_point at, std::optional<int> reason) {
    if (!certificate(serial))
        return false;
    statement s{db_,
                "UPDATE certificates SET revoked_at = ?, revocation_reason = ? "
                "WHERE serial = ? AND revoked_at IS NULL"};
    s.bind(1, to_ms(at));
    if (reason) {
        s.bind(2, std::int64_t{*reason});
    } else {
        s.bind_null(2);
    }
    s.bind(3, static_cast<std::int64_t>(serial));
    s.step();
    return true;
}

std::optional<time_point> store::clock_high_water() {
    const auto v = meta("clock_high_water_ms");
    if (!v)
        return std::nullopt;
    std::int64_t ms = 0;
    const auto* end = v->data() + v->size();
    if (std::from_chars(v->data(), end, ms).ptr != end)
        throw store_error(fmt::format("meta clock_high_water_ms is not a number: '{}'", *v));
    return from_ms(ms);
}

void store::raise_clock_high_water(time_point t) {
    // One statement, so it is atomic and durable on its own (synchronous=FULL); MAX keeps the
    // mark from ever going down, whatever the caller passes.
    statement s{db_,
                "INSERT INTO meta (key, value) VALUES ('clock_high_water_ms', ?1) "
                "ON CONFLICT(key) DO UPDATE SET value = CAST(MAX(CAST(value AS INTEGER), "
                "CAST(?1 AS INTEGER)) AS TEXT) WHERE CAST(value AS INTEGER) < CAST(?1 AS INTEGER)"};
    s.bind(1, std::to_string(to_ms(t)));
    s.step();
}

std::int64_t store::add_request(const request_record& r) {
    statement s{db_,
                "INSERT INTO requests (transaction_id, signer_key_hash, signer_cert_hash, "
                "state, csr_der, subject, fingerprint, renewal, ca_generation, created, "
                "expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"};
    s.bind(1, r.transaction_id)
        .bind(2, r.signer_key_hash)
        .bind(3, r.signer_cert_hash)
        .bind(4, to_string(r.state))
        .bind(5, r.csr_der)
        .bind(6, r.subject)
        .bind(7, r.fingerprint)
        .bind(8, std::int64_t{r.renewal ? 1 : 0})
        .bind(9, std::int64_t{r.ca_generation})
        .bind(10, to_ms(r.created))
        .bind(11, to_ms(r.expires));
    s.step();
    return sqlite3_last_insert_rowid(db_);
}

std::optional<request_record> store::request(std::int64_t id) {
    statement s{db_, fmt::format("SELECT {} FROM requests WHERE id = ?", request_columns).c_str()};
    s.bind(1, id);
    if (s.step())
        return read_request(s);
    return std::nullopt;
}

std::vector<request_record> store::requests_by_transaction(std::string_view transaction_id) {
    statement s{db_,
                fmt::format("SELECT {} FROM requests WHERE transaction_id = ? ORDER BY id DESC",
                            request_columns)
                    .c_str()};
    s.bind(1, transaction_id);
    std::vector<request_record> out;
    while (s.step())
        out.push_back(read_request(s));
    return out;
}

std::vector<request_record> store::requests() {
    statement s{db_, fmt::format("SELECT {} FROM requests ORDER BY id", request_columns).c_str()};
    std::vector<request_record> out;
    while (s.step())
        out.push_back(read_request(s));
    return out;
}

void store::set_request_state(std::int64_t id, request_state st) {
    statement s{db_, "UPDATE requests SET state = ? WHERE id = ?"};
    s.bind(1, to_string(st)).bind(2, id);
    s.step();
}

int store::expire_requests(time_point now) {
    statement s{db_,
                "UPDATE requests SET state = 'expired' WHERE state = 'pending' AND expires <= ?"};
    s.bind(1, to_ms(now));
    s.step();
    return sqlite3_changes(db_);
}

std::optional<time_point> store::earliest_pending_expiry() {
    statement s{db_, "SELECT MIN(expires) FROM requests WHERE state = 'pending'"};
    if (s.step() && !s.is_null(0))
        return from_ms(s.int64(0));
    return std::nullopt;
}

void store::add_password(std::string_view password, time_point expires) {
    statement s{db_, "INSERT OR REPLACE INTO passwords (password, expires, used) VALUES (?, ?, 0)"};
    s.bind(1, password).bind(2, to_ms(expires));
    s.step();
}

bool store::consume_password(std::string_view password, time_point now) {
    statement s{db_,
                "UPDATE passwords SET used = 1 WHERE password = ? AND used = 0 AND expires > ?"};
    s.bind(1, password).bind(2, to_ms(now));
    s.step();
    return sqlite3_changes(db_) == 1;
}

std::uint64_t store::next_crl_number() {
    transaction t{db_};
    std::uint64_t n = 1;
    if (auto v = meta("crl_number"))
        n = std::stoull(*v) + 1;
    set_meta("crl_number", std::to_string(n));
    t.commit();
    return n;
}

void store::set_ca_key_pem(int id, std::string_view key_pem) {
    statement s{db_, "UPDATE ca_generations SET key_pem = ? WHERE id = ?"};
    s.bind(1, key_pem).bind(2, std::int64_t{id});
    s.step();
}

std::string store::integrity_check() {
    statement s{db_, "PRAGMA integrity_check"};
    std::string out;
    while (s.step()) {
        if (!out.empty())
            out += '\n';
        out += s.text(0);
    }
    return out;
}

std::string certificate_file_name(std::uint64_t serial) {
    return fmt::format("{:X}.cer", serial);
}

void write_file_atomically(const std::filesystem::path& path, std::string_view data,
                           file_sync sync) {
    const auto tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw store_error(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
    std::size_t done = 0;
    while (done < data.size()) {
        const auto n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            throw store_error(fmt::format("cannot write {}: {}", tmp, std::strerror(err)));
        }
        done += static_cast<std::size_t>(n);
    }
    if (sync == file_sync::full && ::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        throw store_error(fmt::format("cannot sync {}: {}", tmp, std::strerror(err)));
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw store_error(fmt::format("cannot rename {}: {}", tmp, std::strerror(errno)));
    if (sync == file_sync::none)
        return;
    // The rename itself is durable only once the folder is synced (ext4/xfs: fsync(2) NOTES).
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path{"."};
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::size_t store::repair_certificate_files(const std::filesystem::path& dir) {
    std::error_code ec;
    const std::uint64_t last = last_serial();
    // A kill -9 during write_file_atomically leaves NAME.cer.tmp; the real file is rewritten
    // below when the database says it should exist.
    for (const auto& entry : std::filesystem::directory_iterator{dir, ec}) {
        const auto name = entry.path().filename().string();
        if (name.ends_with(".cer.tmp")) {
            std::filesystem::remove(entry.path(), ec);
            continue;
        }
        // A file written inside a transaction that a kill -9 then rolled back names a serial
        // that was never committed (and will be handed out again): remove it.
        if (name.ends_with(".cer")) {
            const auto stem = std::string_view{name}.substr(0, name.size() - 4);
            std::uint64_t serial = 0;
            const auto [end, err] =
                std::from_chars(stem.data(), stem.data() + stem.size(), serial, 16);
            if (err == std::errc{} && end == stem.data() + stem.size() && !stem.empty() &&
                certificate_file_name(serial) == name && serial > last) {
                std::filesystem::remove(entry.path(), ec);
            }
        }
    }
    std::size_t written = 0;
    statement s{db_, "SELECT serial, der FROM certificates WHERE request_id IS NOT NULL"};
    while (s.step()) {
        const auto serial = static_cast<std::uint64_t>(s.int64(0));
        const bytes der = s.blob(1);
        const auto path = dir / certificate_file_name(serial);
        bool same = false;
        if (const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
            struct stat st {};
            if (::fstat(fd, &st) == 0 && static_cast<std::size_t>(st.st_size) == der.size()) {
                bytes have(der.size());
                std::size_t got = 0;
                while (got < have.size()) {
                    const auto n = ::read(fd, have.data() + got, have.size() - got);
                    if (n <= 0)
                        break;
                    got += static_cast<std::size_t>(n);
                }
                same = got == have.size() && have == der;
            }
            ::close(fd);
        }
        if (!same) {
            write_file_atomically(
                path, std::string_view{reinterpret_cast<const char*>(der.data()), der.size()});
            ++written;
        }
    }
    return written;
}

}  // namespace pkisim::scep
