// The CA engine of the lab server: the IOS certificate server's policy (ios-pki-model.md §1)
// over the codec, the CA crypto and the store. It answers SCEP operations and operator
// commands. Every instant comes from the injected clock; every rule from timers/.
//
// Rollover (rules 3-7): with `auto-rollover` the shadow CA is generated at
// timers::shadow_generation_due, on the engine's clock, by tick() or lazily by the first
// operation at or after that instant; it switches over at the CA's notAfter the same way. All
// of it is in the store (CA generations active / shadow / archived / cancelled).
//
// clang-format off
//   manual_clock clock{parse_iso8601("2030-01-01").value()};
//   ca_engine engine{options, clock};          // creates or loads the CA in options.data_dir
//   http_answer a = engine.pki_operation(der); // a CertRep (SUCCESS / PENDING / FAILURE)
//   engine.admin("rollover");                  // the shadow CA now (IOS `rollover`)
//   time_point next = engine.tick();           // CRL, expiry, shadow, switchover; next event
// clang-format on
//
// Not thread-safe: the server runs it on one dedicated thread (store calls block), never on a
// network thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/enrollment_engine.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"

namespace pkisim::scep {

class ca_issuer;
class ocsp_responder;

class ca_engine final : public enrollment_engine {
  public:
    // Opens DIR/pkisim.db; creates the CA on first start (rule 1) or loads it. Throws
    // startup_error (wrong passphrase, foreign data folder, store failure).
    ca_engine(engine_options options, const timers::clock& clock);
    ~ca_engine() override;

    // Operator commands (admin(), one line as `pkisim ca` sends them): grant all|ID,
    // reject all|ID, password generate [MINUTES] (the core's), and the CA's revoke SERIAL,
    // rollover [cancel], show server|requests|certificates|timers.

    // Periodic work: expire pending requests, renew the CRL, generate the shadow CA (model rule
    // 3) and switch over to it (rule 7) when due. Returns the clock time of the next such event
    // (no SQLite write when nothing is due). Every SCEP operation and admin command does the
    // rollover part first too, so an answer never depends on how late the tick ran.
    time_point tick() override;

    // The current CRL over HTTP (DER, application/pkix-crl): /crl/NAME.crl, the `cdp-url`
    // path and query, GET operation=GetCRL.
    bool is_resource(std::string_view target) const override;
    http_answer resource(std::string_view target) override;
    // Issue 11 §2.9: the OCSP responder (RFC 6960) for every CA generation (ocsp.hpp).
    http_answer ocsp(byte_view der) override;

    // Facts for tests and the CLI.
    X509* ca_certificate() const override;
    // The shadow (rollover) CA certificate, nullptr when there is none.
    X509* shadow_certificate() const;
    int ca_generation() const { return ca_.generation; }
    std::filesystem::path crl_path() const;
    std::filesystem::path ca_pem_path() const;

  private:
    void before(time_point now) override;
    std::vector<X509*> ca_cert_chain() const override;
    std::string ca_caps() const override;
    std::optional<next_ca> next_ca_certs() const override;
    std::optional<time_point> static_until(time_point now) const override;
    std::string no_next_ca_text() const override;

    struct ca_key_pair {
        int generation = 0;
        x509_ptr cert;
        evp_pkey_ptr key;
    };

    // One line for the server's log (rollover events), when options().event_log is set.
    void event(const std::string& line) const;
    void create_ca();
    void load_ca();
    void refresh_crl(time_point now);
    time_point crl_due() const;

    // Rollover (model §1 rules 3 and 7). catch_up runs whatever is due at `now`, in order,
    // however late: shadow generation, switchover, again for a later generation, CRL renewal.
    void catch_up(time_point now);
    // When the automatic shadow generation of the active generation is due, seen at `now`
    // (possibly `now` itself, or earlier after a downtime); nullopt without auto-rollover, after
    // `rollover cancel`, or once the shadow exists.
    std::optional<time_point> auto_shadow_time(time_point now) const;
    bool auto_rollover_cancelled() const;
    void generate_shadow(bool by_operator);
    void switch_over(time_point now);
    void cancel_shadow();
    evp_pkey_ptr next_shadow_key();
    std::string rollover_command(std::span<const std::string_view> args, time_point now, bool& ok);
    // Issues the request's certificate now (grant time = now). nullptr + text on failure.
    x509_ptr issue(const request_record& r, time_point now, std::string& error_text);
    void write_database_files(std::uint64_t serial, X509* cert);
    void after_commit() override;
    // `<serial>.cer` files of certificates issued inside a transaction still open (a batch,
    // issue 12 §3): written by after_commit once it has committed.
    struct unwritten_file {
        std::uint64_t serial = 0;
        bytes der;
    };
    std::vector<unwritten_file> unwritten_files_;

    void add_commands();  // the CA's own operator commands (rollover, revoke, show)
    std::string show_server(time_point now);
    std::string show_requests(time_point now);
    std::string show_certificates();
    std::string show_timers(time_point now);
    std::string show_pkisim();

    friend class ca_issuer;

    // This mode's signer strategy (for the enrollment core).
    std::unique_ptr<ca_issuer> issuer_;
    ca_key_pair ca_;
    // The rollover CA (state `shadow` in the store) while it exists.
    std::optional<ca_key_pair> shadow_;
    // Past active generations (certificates only) and cancelled shadows' generation ids.
    std::vector<x509_ptr> archived_;
    std::vector<int> cancelled_generations_;
    // `rollover cancel` stops the automatic generation for this CA generation and this
    // configured overlap (persisted in meta); nullopt = not cancelled.
    std::optional<int> cancelled_for_;
    std::string cancelled_overlap_;
    std::size_t shadow_keys_used_ = 0;
    x509_crl_ptr crl_;
    time_point crl_this_update_{};
    time_point crl_next_update_{};
    // Earliest pending request expiry, re-read from the store only after requests changed.
    std::optional<time_point> next_expiry_;
    bool expiry_dirty_ = true;
    std::unique_ptr<ocsp_responder> ocsp_;  // made at the first OCSP request
};

// "1094d23:34:30.810" / "5:54:30.810" / "48.241": IOS `show crypto pki timers` countdowns
// (ios-pki-research.md §3.2).
std::string ios_countdown(timers::duration d);

}  // namespace pkisim::scep
