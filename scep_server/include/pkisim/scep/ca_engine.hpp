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
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"

namespace pkisim::scep {

class ca_engine final : public scep_service {
  public:
    // Opens DIR/pkisim.db; creates the CA on first start (rule 1) or loads it. Throws
    // startup_error (wrong passphrase, foreign data folder, store failure).
    ca_engine(engine_options options, const timers::clock& clock);
    ~ca_engine();
    ca_engine(const ca_engine&) = delete;
    ca_engine& operator=(const ca_engine&) = delete;

    http_answer get_ca_cert() override;
    http_answer get_ca_caps() override;
    http_answer get_next_ca_cert() override;
    http_answer pki_operation(byte_view der) override;

    // Operator commands (one line, as `pkisim ca` sends them): grant all|ID, reject all|ID,
    // revoke SERIAL, password generate [MINUTES], show server|requests|certificates|timers.
    // Returns {ok, text}.
    admin_result admin(std::string_view line) override;

    // Periodic work: expire pending requests, renew the CRL when due. Returns when it next
    // wants to run (clock time).
    time_point tick() override;

    // Facts for tests and the CLI.
    X509* ca_certificate() const override;
    const engine_options& options() const override { return options_; }
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
