// The one SCEP service of the lab server (architecture.md, last section): GetCACert, GetCACaps,
// GetNextCACert and PKIOperation, and the operator command table, written once for both modes.
// A mode (ca_engine: this CA issues; ra_engine: an RA forwards to its CA) derives from it and
// supplies the certificates, the capabilities and its signer strategy; the enrollment core
// (scep_server/src/enrollment_core.hpp) runs PKIOperation and the commands over the policy
// (policy.hpp).
//
//   std::unique_ptr<scep_service> svc = make_service(options, clock);  // a mode
//   http_answer a = svc->get_ca_cert();       // the mode's certificates, encoded here
//
// Not thread-safe: the server calls every member from its single engine thread.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/clock.hpp"

namespace pkisim::scep {

namespace detail {
class enrollment_core;
}

class enrollment_engine : public scep_service {
  public:
    ~enrollment_engine() override;
    enrollment_engine(const enrollment_engine&) = delete;
    enrollment_engine& operator=(const enrollment_engine&) = delete;

    http_answer get_ca_cert() final;
    http_answer get_ca_caps() final;
    http_answer get_next_ca_cert() final;
    http_answer pki_operation(byte_view der) final;
    // Issue 12 §3 (service.hpp): the staged PKIOperation with group commit.
    std::unique_ptr<pki_job> pki_prepare(bytes der) final;
    void pki_process(std::span<const std::unique_ptr<pki_job>> jobs) final;
    http_answer pki_finish(pki_job& job) final;
    admin_result admin(std::string_view line) final;
    std::shared_ptr<const static_answers> prepared_static(time_point now) final;

    const engine_options& options() const final { return options_; }
    // Issue 11 §2.7: raises the store's clock high-water mark (the server's tick).
    void record_clock(time_point now) final;
    store& database() { return *store_; }

  protected:
    enrollment_engine(engine_options options, const timers::clock& clock);

    // Creates the data folder (owner only) and opens DIR/pkisim.db. Throws startup_error.
    void open_store();
    // Issue 11 §2.7, called by each mode once its data is loaded (after the foreign-folder and
    // passphrase checks, before anything is dated): throws startup_error(clock_backwards) when
    // the clock is earlier than the folder has seen, unless options.allow_clock_backwards; then
    // records the clock.
    void check_clock();

    // What the mode supplies.
    // Run before every operation and command at `now` (the CA catches up on its rollover).
    virtual void before(time_point /*now*/) {}
    // Set when the mode cannot serve GetCACert and PKIOperation yet (the RA without its RA
    // certificate: 503).
    virtual std::optional<http_answer> unavailable() const { return std::nullopt; }
    // GetCACert: one certificate goes out as raw DER, several as a degenerate SignedData
    // (scep-wire §1.6).
    virtual std::vector<X509*> ca_cert_chain() const = 0;
    // GetCACaps body (scep-wire §1.7).
    virtual std::string ca_caps() const = 0;
    // GetNextCACert (model rule 4, scep-wire §1.8): the next certificates and who signs them
    // (the CURRENT key); nullopt = no rollover certificate yet (IOS-exact 404 with `detail`).
    struct next_ca {
        std::vector<X509*> certs;
        X509* signer = nullptr;
        EVP_PKEY* key = nullptr;
        int digest_nid = 0;
        std::string detail;
    };
    virtual std::optional<next_ca> next_ca_certs() const = 0;
    virtual std::string no_next_ca_text() const = 0;
    // static_answers::until: when before() next changes the certificates by itself.
    virtual std::optional<time_point> static_until(time_point /*now*/) const {
        return std::nullopt;
    }
    // Called once what the engine wrote has committed (after each operation, and after each
    // batch's transaction): the CA writes its `<serial>.cer` files here.
    virtual void after_commit() {}

    engine_options options_;
    const timers::clock& clock_;

  private:
    std::optional<time_point> clock_recorded_;  // the last mark written (record_clock)
    http_answer next_ca_answer(time_point now);
    // prepared_static's last answers, and the certificates its GetNextCACert was signed for.
    std::shared_ptr<const static_answers> prepared_;
    std::string prepared_next_key_;
    // Issue 12 §3: the keys pki_prepare decrypts with on the workers, published by the engine
    // thread (it owns the keys; a rollover changes them). Each holds its own references.
    void commit_files();  // after_commit; a failure is logged (the next start repairs)
    struct key_snapshot;
    std::shared_ptr<const key_snapshot> current_keys();  // engine thread: refreshed if changed
    mutable std::mutex keys_mutex_;
    std::shared_ptr<const key_snapshot> published_keys_;

  protected:
    std::unique_ptr<store> store_;
    std::unique_ptr<detail::enrollment_core> core_;
};

}  // namespace pkisim::scep
