// The CA engine of the lab server: the IOS certificate server's policy (ios-pki-model.md §1)
// over the codec, the CA crypto and the store. It answers SCEP operations and operator
// commands. Every instant comes from the injected clock; every rule from timers/.
//
//   manual_clock clock{parse_iso8601("2030-01-01").value()};
//   ca_engine engine{options, clock};                 // creates or loads the CA in
//   options.data_dir http_answer a = engine.pki_operation(der);       // a CertRep (SUCCESS /
//   PENDING / FAILURE) std::string text = engine.admin("grant all");    // operator command,
//   IOS-style output
//
// Not thread-safe: the server runs it on one dedicated thread (store calls block), never on a
// network thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"

namespace pkisim::scep {

// Exit codes of `pkisim serve` (the CLI maps startup_error::exit_code to the process status).
enum class exit_status : int {
    ok = 0,
    failure = 1,           // other runtime failure
    config = 2,            // bad configuration or usage
    listen = 3,            // address in use / cannot listen
    wrong_passphrase = 4,  // the CA key does not decrypt with this passphrase
    foreign_data = 5,      // DIR holds another CA (different issuer-name or server name)
    store = 6,             // the database cannot be opened or is corrupt
};

class startup_error : public std::runtime_error {
  public:
    startup_error(exit_status s, const std::string& what) : std::runtime_error(what), status_(s) {}
    exit_status status() const noexcept { return status_; }
    int exit_code() const noexcept { return static_cast<int>(status_); }

  private:
    exit_status status_;
};

struct engine_options {
    timers::server_config server;
    std::filesystem::path data_dir;
    // Protects the CA key on disk (IOS asks for one at `no shutdown`).
    std::string passphrase;
    // A static challenge password (--challenge-file / PKISIM_CHALLENGE). When set, initial
    // enrollments must carry it or a valid one-time password.
    std::optional<std::string> challenge;
    unsigned key_bits = 2048;
    // IOS: "if a key with that label exists it is used; otherwise one is generated at first
    // `no shutdown`" (ios-pki-research.md §1.1). An unencrypted PEM private key to use for a
    // new CA instead of generating one (tests use fixture keys to stay fast).
    std::string existing_key_pem;
    // --legacy-crypto: accept single DES and MD5 (scep-wire §0.1).
    bool legacy_crypto = false;
    // scep-wire §1.5: the issued certificate only, by default; Cisco VPN clients want the CA too.
    bool include_ca_in_success = false;
};

// What the HTTP layer sends. `ios_404` = the byte-exact IOS 404 (model §1 rule 4).
struct http_answer {
    unsigned status = 200;
    std::string content_type;  // empty = no Content-Type header
    std::string body;
    bool ios_404 = false;
    // For the access log: "PKCSReq SUCCESS", "CertPoll PENDING", "badRequest: ...".
    std::string detail;
};

class ca_engine {
  public:
    // Opens DIR/pkisim.db; creates the CA on first start (rule 1) or loads it. Throws
    // startup_error (wrong passphrase, foreign data folder, store failure).
    ca_engine(engine_options options, const timers::clock& clock);
    ~ca_engine();
    ca_engine(const ca_engine&) = delete;
    ca_engine& operator=(const ca_engine&) = delete;

    http_answer get_ca_cert();
    http_answer get_ca_caps();
    http_answer get_next_ca_cert();
    http_answer pki_operation(byte_view der);

    // Operator commands (one line, as `pkisim ca` sends them): grant all|ID, reject all|ID,
    // revoke SERIAL, password generate [MINUTES], show server|requests|certificates|timers.
    // Returns {ok, text}.
    struct admin_result {
        bool ok = true;
        std::string text;
    };
    admin_result admin(std::string_view line);

    // Periodic work: expire pending requests, renew the CRL when due. Returns when it next
    // wants to run (clock time).
    time_point tick();

    // Facts for tests and the CLI.
    X509* ca_certificate() const;
    const engine_options& options() const { return options_; }
    store& database() { return *store_; }
    std::filesystem::path crl_path() const;
    std::filesystem::path ca_pem_path() const;

  private:
    struct ca_key_pair {
        int generation = 0;
        x509_ptr cert;
        evp_pkey_ptr key;
    };

    void create_ca();
    void load_ca();
    void refresh_crl(time_point now);
    std::string cert_rep(cert_rep_params params, std::string& detail);
    http_answer reply(cert_rep_params params, std::string detail);
    http_answer fail(const reply_context& ctx, fail_info info, std::string text);
    http_answer enroll(const pki_request& req, time_point now);
    http_answer poll(const pki_request& req, time_point now);
    http_answer answer_existing(const pki_request& req, request_record r, time_point now);
    http_answer get_cert(const pki_request& req);
    http_answer get_crl(const pki_request& req);
    // Issues the request's certificate now (grant time = now). nullptr + text on failure.
    x509_ptr issue(const request_record& r, time_point now, std::string& error_text);
    void write_database_files(std::uint64_t serial, X509* cert);

    std::string grant(std::string_view what, time_point now);
    std::string reject(std::string_view what, time_point now);
    std::string show_server(time_point now);
    std::string show_requests(time_point now);
    std::string show_certificates();
    std::string show_timers(time_point now);

    engine_options options_;
    const timers::clock& clock_;
    std::unique_ptr<store> store_;
    ca_key_pair ca_;
    bytes ca_der_;
    x509_crl_ptr crl_;
    time_point crl_next_update_{};
};

// "1094d23:34:30.810" / "5:54:30.810" / "48.241": IOS `show crypto pki timers` countdowns
// (ios-pki-research.md §3.2).
std::string ios_countdown(timers::duration d);

}  // namespace pkisim::scep
