// The CA's durable state in DIR/pkisim.db (SQLite, WAL, synchronous=FULL): the serial counter,
// enrollment requests, issued certificates, CA generations, one-time passwords, small metadata.
//
//   store db{dir / "pkisim.db"};
//   auto serial = db.issue(req_id, [&](std::uint64_t s) { return build_cert(s); });  // one txn
//   db.set_request_state(id, request_state::rejected);
//
// Not thread-safe: the server calls it from its single engine thread only (never from a network
// thread). Every call is synchronous and durable when it returns (synchronous=FULL): an issued
// certificate is committed before its CertRep leaves (issue 3 §5). Serials are allocated inside
// the transaction that stores the certificate, so a crash can never hand out a serial twice.
// Errors are start-up or resource errors: they throw store_error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/openssl.hpp"

struct sqlite3;

namespace pkisim::scep {

class store_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// IOS `show crypto pki server NAME requests` states plus ours (rejected, expired, issued).
enum class request_state { pending, granted, rejected, issued, expired };
std::string_view to_string(request_state s) noexcept;

struct request_record {
    std::int64_t id = 0;  // IOS ReqID
    std::string transaction_id;
    std::string signer_key_hash;   // hex SHA-1 of the signer's public key
    std::string signer_cert_hash;  // hex SHA-256 of the signer certificate (poll vs. renewal)
    request_state state = request_state::pending;
    bytes csr_der;
    std::string subject;
    std::string fingerprint;  // IOS: MD5 of the CSR, 32 upper-case hex digits
    bool renewal = false;
    int ca_generation = 0;  // which CA generation issues it (model rule 6)
    time_point created{};
    time_point expires{};
    std::optional<std::uint64_t> serial;  // set once issued
    // Not stored: csr_der already parsed, when the caller has it (issue 12 §3: a request
    // issued as it arrives is not parsed twice). Owned by the caller.
    X509_REQ* parsed_csr = nullptr;
};

struct certificate_record {
    std::uint64_t serial = 0;
    bytes der;
    std::string subject;
    time_point not_before{};
    time_point not_after{};
    std::optional<time_point> revoked_at;
    std::optional<std::int64_t> request_id;
    // RFC 5280 §5.3.1 CRLReason code given at `revoke SERIAL REASON` (nullopt: none given).
    std::optional<int> revocation_reason;
};

// active: signs now; shadow: the rollover CA (model rule 3) until the switchover (rule 7);
// archived: a past active generation; cancelled: a shadow removed by `rollover cancel`.
enum class ca_state { active, shadow, archived, cancelled };
std::string_view to_string(ca_state s) noexcept;

struct ca_generation_record {
    int id = 0;
    bytes cert_der;
    std::string key_pem;  // encrypted PKCS#8 PEM
    ca_state state = ca_state::active;
};

class store {
  public:
    // Opens or creates the database; the file is created with mode 0600.
    explicit store(const std::filesystem::path& file);
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    // Runs `body` in one transaction (BEGIN IMMEDIATE ... COMMIT): every store call inside it
    // commits with it or, if `body` throws, not at all (calls that open their own transaction
    // become savepoints). Used for a rollover: serial + shadow certificate + CA generation.
    void transact(const std::function<void()>& body);
    // Whether a transaction is open (inside transact): what is written now is durable only
    // once it commits.
    bool in_transaction() const;

    // Metadata (issuer name, CRL number, ...).
    std::optional<std::string> meta(std::string_view key);
    void set_meta(std::string_view key, std::string_view value);

    // CA generations (issue 4 adds shadow/archived transitions).
    std::vector<ca_generation_record> ca_generations();
    int add_ca_generation(const bytes& cert_der, std::string_view key_pem, ca_state state);
    void set_ca_state(int id, ca_state state);

    // The last serial handed out (0 when none). The CA certificate itself takes serial 1.
    std::uint64_t last_serial();
    // Allocates the next serial and stores the certificate `build` makes with it, in ONE
    // transaction; when `request_id` is set the request becomes `issued` in the same
    // transaction. `build` may throw: the transaction is rolled back and the serial is not
    // consumed (nothing left the process).
    struct built_certificate {
        bytes der;
        std::string subject;
        time_point not_before{};
        time_point not_after{};
    };
    std::uint64_t issue(std::optional<std::int64_t> request_id,
                        const std::function<built_certificate(std::uint64_t serial)>& build);
    // Takes a serial for a non-certificate purpose (the CA certificate).
    std::uint64_t take_serial();

    std::optional<certificate_record> certificate(std::uint64_t serial);
    std::vector<certificate_record> certificates();
    std::vector<certificate_record> revoked();
    // false when unknown; revoking twice keeps the first time (and reason).
    bool revoke(std::uint64_t serial, time_point at, std::optional<int> reason = std::nullopt);

    // Issue 11 §2.7: the latest server-clock instant this data folder has seen (durable; never
    // lowered). nullopt for a folder that never recorded one.
    std::optional<time_point> clock_high_water();
    // Raises it to `t` when `t` is later; a no-op (no write) otherwise.
    void raise_clock_high_water(time_point t);

    // Requests.
    std::int64_t add_request(const request_record& r);
    std::optional<request_record> request(std::int64_t id);
    // Newest first.
    std::vector<request_record> requests_by_transaction(std::string_view transaction_id);
    std::vector<request_record> requests();  // oldest first
    void set_request_state(std::int64_t id, request_state s);
    // The earliest `expires` of a pending request (a read only: the engine's tick asks it after
    // requests changed, never on every call).
    std::optional<time_point> earliest_pending_expiry();
    // Marks pending requests with expires <= now as expired; returns how many.
    int expire_requests(time_point now);

    // One-time challenge passwords (`password generate`).
    void add_password(std::string_view password, time_point expires);
    // Consumes it when valid (exists, unused, not expired). true = consumed now.
    bool consume_password(std::string_view password, time_point now);

    // CRL number (monotonic).
    std::uint64_t next_crl_number();

    // Crash recovery and upkeep (issue 13 §2, §4).
    // Replaces the encrypted key of a CA generation (key-encryption migration).
    void set_ca_key_pem(int id, std::string_view key_pem);
    // `PRAGMA integrity_check`: "ok" when the database is sound.
    std::string integrity_check();
    // IOS `database level complete`: every certificate issued for a request has its
    // `<SERIAL>.cer` (upper-case hex, DER) in `dir`. A kill -9 between the commit and the file
    // leaves it missing (or a stale `.tmp`): writes every missing or differing file atomically
    // and removes leftover temporaries and files of serials never committed (a rolled-back
    // transaction). Returns how many files it wrote.
    std::size_t repair_certificate_files(const std::filesystem::path& dir);

  private:
    void exec(const char* sql);
    sqlite3* db_ = nullptr;
};

// Writes `data` to `path` so that a crash leaves either the old file or the new one, never a
// part: `path.tmp` (mode 0600) + fsync + rename + fsync of the folder. Throws store_error.
// file_sync::none (issue 12 §3): temp + rename without the two fsyncs, for a file whose content
// the database already holds durably and that start-up repairs (repair_certificate_files):
// a kill -9 leaves the old file or the new one (the rename is atomic); a power loss may leave
// it missing or empty, which the next start rewrites from the database.
enum class file_sync { full, none };
void write_file_atomically(const std::filesystem::path& path, std::string_view data,
                           file_sync sync = file_sync::full);

// The name `database level complete` gives a certificate file: "<SERIAL>.cer", serial in
// upper-case hex (IOS).
std::string certificate_file_name(std::uint64_t serial);

}  // namespace pkisim::scep
