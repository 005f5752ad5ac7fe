#include "pkisim/scep/ca_engine.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <sstream>

#include <date/date.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "engine_text.hpp"
#include "enrollment_core.hpp"
#include "ocsp.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/key_protection.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::scep {

using namespace detail;  // engine_text.hpp: what the CA and RA engines share

namespace {

// Writes a file readable by the owner only (the data folder holds the CA; issue 3 §1).
void write_private_file(const std::filesystem::path& path, std::string_view data) {
    const auto tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw store_error(fmt::format("cannot write {}", tmp));
    std::size_t done = 0;
    while (done < data.size()) {
        const auto n = ::write(fd, data.data() + done, data.size() - done);
        if (n <= 0) {
            ::close(fd);
            throw store_error(fmt::format("cannot write {}", tmp));
        }
        done += static_cast<std::size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
    std::filesystem::rename(tmp, path);
}

// "30 days", "1 days" (IOS prints the plural even for 1, research §1.4).
std::string overlap_text(timers::duration d) {
    const auto day_count = std::chrono::duration_cast<timers::days>(d).count();
    return fmt::format("{} days", day_count);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The signer strategy of CA mode (enrollment_core.hpp): this CA issues.

class ca_issuer final : public detail::signer_strategy {
  public:
    explicit ca_issuer(ca_engine& ca) : ca_(ca) {}

    std::string_view role() const override { return "CA"; }
    bool issues_locally() const override { return true; }

    std::vector<decryption_key> decryption_keys() const override {
        // Rule 6: during the overlap a client may encrypt to the shadow CA (index 1).
        std::vector<decryption_key> keys{{ca_.ca_.cert.get(), ca_.ca_.key.get()}};
        if (ca_.shadow_)
            keys.push_back({ca_.shadow_->cert.get(), ca_.shadow_->key.get()});
        return keys;
    }

    detail::reply_signer signer_for(std::size_t recipient_index) const override {
        // A request encrypted to the shadow comes from a client that took the shadow from
        // GetNextCACert and now enrolls in its rollover trustpoint: IOS verifies that CertRep
        // against the rollover CA certificate it enrolls to (research §2), and `pkisim client
        // --ca nextca.pem` does the same. certmonger 0.79.17 and micromdm scepclient 2.1.0
        // never send such requests. So the shadow signs.
        const auto& k = recipient_index == 1 && ca_.shadow_ ? *ca_.shadow_ : ca_.ca_;
        return {k.cert.get(), k.key.get(), nullptr, k.generation, &k != &ca_.ca_};
    }

    std::vector<X509*> renewal_anchors() const override {
        // Signers issued by the active CA or by the shadow are trusted (rule 6 renewals).
        std::vector<X509*> trusted{ca_.ca_.cert.get()};
        if (ca_.shadow_)
            trusted.push_back(ca_.shadow_->cert.get());
        return trusted;
    }

    bool claims_our_issuer(X509* signer) const override {
        return X509_NAME_cmp(X509_get_issuer_name(signer),
                             X509_get_subject_name(ca_.ca_.cert.get())) == 0;
    }

    revocation_knowledge revocation(X509* signer, time_point /*now*/) override {
        const auto serial = serial_u64(signer);
        auto c = serial ? ca_.store_->certificate(*serial) : std::nullopt;
        const bool revoked = c && c->revoked_at && c->der == to_der(signer);
        return {revoked ? revocation_knowledge::state::revoked : revocation_knowledge::state::good,
                "the CA's database"};
    }

    bool is_ra_certificate(X509* signer) const override {
        return is_ra_subject(X509_get_subject_name(signer));
    }

    detail::fulfilment grant(request_record& r, time_point now) override {
        detail::fulfilment f;
        std::string err;
        f.cert = ca_.issue(r, now, err);
        f.status = f.cert ? pki_status::success : pki_status::failure;
        f.text = std::move(err);
        return f;
    }

    detail::fulfilment retrieve(request_record& r, time_point /*now*/) override {
        detail::fulfilment f;
        f.status = pki_status::failure;
        std::optional<certificate_record> c;
        if (r.serial)
            c = ca_.store_->certificate(*r.serial);
        if (!c) {
            f.text = "issued certificate missing";
            return f;
        }
        auto cert = x509_from_der(c->der);
        if (!cert) {
            f.text = "stored certificate corrupt";
            return f;
        }
        f.status = pki_status::success;
        f.cert = std::move(*cert);
        return f;
    }

    http_answer get_cert(const pki_request& req, const detail::reply_signer& s,
                         time_point now) override {
        const auto* id = req.cert_id();
        std::optional<certificate_record> c;
        if (id && id->serial_u64)
            c = ca_.store_->certificate(*id->serial_u64);
        if (!c)
            return ca_.core_->fail(req.context(), s, fail_info::bad_cert_id, "unknown serial", now);
        auto cert = x509_from_der(c->der);
        if (!cert) {
            return ca_.core_->fail(req.context(), s, fail_info::bad_request,
                                   "stored certificate corrupt", now);
        }
        return cert_rep_answer(success_for(req.context(), s.cert, s.key, {cert->get()}, now),
                               fmt::format("GetCert SUCCESS serial {}", serial_hex(cert->get())));
    }

    http_answer get_crl(const pki_request& req, const detail::reply_signer& s,
                        time_point now) override {
        auto p = success_for(req.context(), s.cert, s.key, {}, now);
        p.crls.push_back(ca_.crl_.get());
        return cert_rep_answer(std::move(p), "GetCRL SUCCESS");
    }

    std::string granted_line(const request_record& r, const detail::fulfilment& f) const override {
        if (f.status == pki_status::success)
            return fmt::format("% Granted request {}: serial {}\n", r.id, serial_hex(f.cert.get()));
        return fmt::format("% Request {} not granted: {}\n", r.id, f.text);
    }

  private:
    ca_engine& ca_;
};

// A new CA (or shadow CA) key of the configured type (--key-type, --ec-curve, --key-bits).
static evp_pkey_ptr new_ca_key(const engine_options& o) {
    if (o.key_type == "ec")
        return generate_ec_key(o.ec_curve);
    return generate_rsa_key(o.key_bits);
}

std::string ios_countdown(timers::duration d) {
    if (d < timers::duration{0})
        d = timers::duration{0};
    auto ms = d.count();
    const auto day_count = ms / 86'400'000;
    ms %= 86'400'000;
    const auto h = ms / 3'600'000;
    ms %= 3'600'000;
    const auto m = ms / 60'000;
    ms %= 60'000;
    const auto s = ms / 1000;
    ms %= 1000;
    // research §3.2: leading zero fields dropped; hours space-padded after `d`.
    if (day_count > 0)
        return fmt::format("{}d{:2}:{:02}:{:02}.{:03}", day_count, h, m, s, ms);
    if (h > 0)
        return fmt::format("{}:{:02}:{:02}.{:03}", h, m, s, ms);
    if (m > 0)
        return fmt::format("{}:{:02}.{:03}", m, s, ms);
    return fmt::format("{}.{:03}", s, ms);
}

ca_engine::ca_engine(engine_options options, const timers::clock& clock)
    : enrollment_engine(std::move(options), clock) {
    if (options_.server.issuer_name.empty()) {
        options_.server.issuer_name = "CN=" + options_.server.name;  // IOS default
    }
    open_store();
    try {
        issuer_ = std::make_unique<ca_issuer>(*this);
        core_ = std::make_unique<detail::enrollment_core>(*issuer_, *store_, options_, clock_);
        add_commands();
        if (store_->ca_generations().empty()) {
            create_ca();
        } else {
            migrate_key_encryption(*store_, options_.passphrase);  // issue 13 §4
            load_ca();
        }
        // Issue 11 §2.7: after the foreign-folder and passphrase checks, before anything is
        // dated (CRL, switchover).
        check_clock();
        // Issue 13 §2: a kill -9 between a certificate's commit and its file.
        if (options_.server.db_level == timers::database_level::complete)
            store_->repair_certificate_files(options_.data_dir);
        const time_point now = clock_.now();
        // A restart after the shadow's due time (overlap raised in the config) generates it at
        // once; a restart after notAfter performs the switchover (model rules 3 and 7).
        catch_up(now);
        refresh_crl(now);
    } catch (const store_error& e) {
        throw startup_error(exit_status::store, fmt::format("data folder {}: {}",
                                                            options_.data_dir.string(), e.what()));
    }
}

ca_engine::~ca_engine() = default;

X509* ca_engine::ca_certificate() const {
    return ca_.cert.get();
}
X509* ca_engine::shadow_certificate() const {
    return shadow_ ? shadow_->cert.get() : nullptr;
}
std::filesystem::path ca_engine::crl_path() const {
    return options_.data_dir / (options_.server.name + ".crl");
}
std::filesystem::path ca_engine::ca_pem_path() const {
    return options_.data_dir / "ca.pem";
}

void ca_engine::create_ca() {
    if (options_.passphrase.empty()) {
        throw startup_error(exit_status::config, "an empty passphrase cannot protect the CA key");
    }
    const time_point now = clock_.now();
    auto dn = parse_dn(options_.server.issuer_name);
    if (!dn) {
        throw startup_error(exit_status::config, fmt::format("issuer-name '{}' is not a valid DN",
                                                             options_.server.issuer_name));
    }
    evp_pkey_ptr key;
    if (!options_.existing_key_pem.empty()) {
        auto existing = private_key_from_pem(options_.existing_key_pem);
        if (!existing)
            throw startup_error(exit_status::config, "the given CA key is not a private key");
        key = std::move(*existing);
    } else {
        key = new_ca_key(options_);
    }
    const auto validity = timers::ca_validity(options_.server, now);  // rule 1
    x509_ptr cert;
    // IOS: the CA certificate takes serial 1 and is listed by `show ... certificates`.
    store_->issue(std::nullopt, [&](std::uint64_t serial) {
        auto made =
            make_self_signed_ca(key.get(), dn->get(), validity, serial, options_.server.hash);
        if (!made)
            throw store_error("cannot make the CA certificate: " + made.error().message());
        cert = std::move(*made);
        return store::built_certificate{to_der(cert.get()), subject_string(cert.get()),
                                        validity.not_before, validity.not_after};
    });
    const std::string pem = encrypt_private_key_pem(key.get(), options_.passphrase);
    const int gen = store_->add_ca_generation(to_der(cert.get()), pem, ca_state::active);
    store_->set_meta("server_name", options_.server.name);
    store_->set_meta("issuer_name", options_.server.issuer_name);
    ca_ = {gen, std::move(cert), std::move(key)};
    write_private_file(ca_pem_path(), to_pem(ca_.cert.get()));
}

void ca_engine::load_ca() {
    const auto issuer = store_->meta("issuer_name").value_or("");
    const auto name = store_->meta("server_name").value_or("");
    if (issuer != options_.server.issuer_name || name != options_.server.name) {
        throw startup_error(
            exit_status::foreign_data,
            fmt::format("data folder {} belongs to CA '{}' (issuer-name {}), not '{}' ({})",
                        options_.data_dir.string(), name, issuer, options_.server.name,
                        options_.server.issuer_name));
    }
    auto load_key = [&](const ca_generation_record& g) {
        return load_stored_key(g.key_pem, options_, "CA");
    };
    bool have_active = false;
    for (auto& g : store_->ca_generations()) {
        if (g.state == ca_state::cancelled) {
            cancelled_generations_.push_back(g.id);
            continue;
        }
        auto cert = x509_from_der(g.cert_der);
        if (!cert)
            throw startup_error(exit_status::store, "the stored CA certificate is corrupt");
        switch (g.state) {
            case ca_state::active:
                ca_ = {g.id, std::move(*cert), load_key(g)};
                have_active = true;
                break;
            case ca_state::shadow:
                shadow_ = ca_key_pair{g.id, std::move(*cert), load_key(g)};
                break;
            case ca_state::archived:
                archived_.push_back(std::move(*cert));
                break;
            case ca_state::cancelled:
                break;
        }
    }
    if (have_active) {
        if (auto c = store_->meta("rollover_cancelled_generation"); c && !c->empty()) {
            cancelled_for_ = std::stoi(*c);
            cancelled_overlap_ = store_->meta("rollover_cancelled_overlap").value_or("");
        }
        // ca.pem follows the active generation (a crash may have come between the switchover's
        // commit and the file).
        const std::string pem = to_pem(ca_.cert.get());
        std::ifstream in{ca_pem_path()};
        std::stringstream have;
        have << in.rdbuf();
        if (!in || have.str() != pem)
            write_private_file(ca_pem_path(), pem);
        return;
    }
    throw startup_error(exit_status::store, "the data folder has no active CA generation");
}

void ca_engine::refresh_crl(time_point now) {
    std::vector<revoked_entry> entries;
    // The CRL of the active key lists what that key issued. Certificates of earlier
    // generations all ended by this generation's notBefore (rule 2 truncation; rule 7), so they
    // are left out; rollover ID certificates the shadow issued before the switchover stay.
    const time_point generation_start = not_before(ca_.cert.get());
    for (const auto& c : store_->revoked()) {
        if (c.not_after > generation_start)
            entries.push_back({c.serial, *c.revoked_at, c.revocation_reason});
    }
    const auto next = now + options_.server.crl_lifetime;  // `lifetime crl`
    auto crl = make_crl(ca_.cert.get(), ca_.key.get(), entries, now, next,
                        store_->next_crl_number(), options_.server.hash);
    if (!crl)
        throw store_error("cannot make the CRL: " + crl.error().message());
    crl_ = std::move(*crl);
    crl_this_update_ = now;
    crl_next_update_ = next;
    write_private_file(crl_path(), as_string(to_der(crl_.get())));
}

time_point ca_engine::crl_due() const {
    // A zero `lifetime crl` would renew on every tick; keep at least a minute.
    return std::max(crl_next_update_, crl_this_update_ + timers::minutes{1});
}

time_point ca_engine::tick() {
    const time_point now = clock_.now();
    catch_up(now);
    if (expiry_dirty_) {
        next_expiry_ = store_->earliest_pending_expiry();
        expiry_dirty_ = false;
    }
    if (next_expiry_ && *next_expiry_ <= now) {
        store_->expire_requests(now);
        next_expiry_ = store_->earliest_pending_expiry();
    }
    // The true next event: the server sleeps until then (clamped to a real second).
    time_point next = crl_due();
    if (next_expiry_)
        next = std::min(next, *next_expiry_);
    if (auto t = auto_shadow_time(now))
        next = std::min(next, *t);
    if (shadow_)
        next = std::min(next, timers::switchover_time(not_after(ca_.cert.get())));
    return next;
}

// ---------------------------------------------------------------------------------------------
// Rollover (ios-pki-model.md §1 rules 3, 6, 7; ios-pki-research.md §2).

namespace {
// How `rollover cancel` remembers the overlap it was given under ("none" without
// auto-rollover): a different configured overlap re-arms the automatic generation.
std::string overlap_key(const std::optional<timers::duration>& overlap) {
    return overlap ? std::to_string(overlap->count()) : std::string{"none"};
}
}  // namespace

bool ca_engine::auto_rollover_cancelled() const {
    return cancelled_for_ && *cancelled_for_ == ca_.generation &&
           cancelled_overlap_ == overlap_key(options_.server.auto_rollover);
}

std::optional<time_point> ca_engine::auto_shadow_time(time_point now) const {
    if (shadow_ || !options_.server.auto_rollover || auto_rollover_cancelled())
        return std::nullopt;
    const time_point ca_end = not_after(ca_.cert.get());
    // Rule 3 on a live server: notAfter − overlap, or now when that is already past.
    if (auto t = timers::shadow_generation_due(ca_end, options_.server.auto_rollover, now)) {
        return t;
    }
    // The CA has expired with no shadow (the server was down through the whole overlap): the
    // missed timer fires late, then the switchover follows at once (our choice; a lab server
    // that comes back should not stay on a dead CA).
    return timers::shadow_generation_time(ca_end, options_.server.auto_rollover);
}

void ca_engine::catch_up(time_point now) {
    // Bounded: a warped clock or a long downtime may cross several generations at once.
    for (int round = 0; round < 64; ++round) {
        if (auto t = auto_shadow_time(now); t && *t <= now) {
            generate_shadow(false);
            continue;
        }
        if (shadow_ && now >= timers::switchover_time(not_after(ca_.cert.get()))) {
            switch_over(now);
            continue;
        }
        break;
    }
    if (now >= crl_due())
        refresh_crl(now);
}

evp_pkey_ptr ca_engine::next_shadow_key() {
    if (shadow_keys_used_ < options_.shadow_key_pems.size()) {
        auto key = private_key_from_pem(options_.shadow_key_pems[shadow_keys_used_++]);
        if (!key)
            throw store_error("the given shadow CA key is not a private key");
        return std::move(*key);
    }
    return new_ca_key(options_);
}

void ca_engine::generate_shadow(bool by_operator) {
    evp_pkey_ptr key = next_shadow_key();
    // Rule 3: same subject, new key, notBefore = current notAfter, + lifetime ca-certificate.
    const auto validity =
        timers::shadow_ca_validity(not_after(ca_.cert.get()), options_.server.ca_lifetime);
    const std::string pem = encrypt_private_key_pem(key.get(), options_.passphrase);
    x509_ptr cert;
    int generation = 0;
    // One transaction: the serial (from the store, never reused), the certificate row and the
    // CA generation commit together; `rollover` also lifts an earlier `rollover cancel`.
    store_->transact([&] {
        store_->issue(std::nullopt, [&](std::uint64_t serial) {
            auto made =
                make_shadow_ca(key.get(), ca_.cert.get(), validity, serial, options_.server.hash);
            if (!made)
                throw store_error("cannot make the shadow CA certificate: " +
                                  made.error().message());
            cert = std::move(*made);
            return store::built_certificate{to_der(cert.get()), subject_string(cert.get()),
                                            validity.not_before, validity.not_after};
        });
        generation = store_->add_ca_generation(to_der(cert.get()), pem, ca_state::shadow);
        if (by_operator)
            store_->set_meta("rollover_cancelled_generation", "");
    });
    if (by_operator)
        cancelled_for_.reset();
    // IOS syslog (%PKI-6-CS_ROLLOVER_AVAILABLE) says so; so does our log.
    event(
        fmt::format("%PKI-6-CS_ROLLOVER_AVAILABLE: CS Rollover certificate has been generated "
                    "(fingerprint {}){}, and will become active at {}",
                    md5_fingerprint(cert.get()), by_operator ? " by the operator" : "",
                    timers::to_ios_time(not_before(cert.get()))));
    shadow_ = ca_key_pair{generation, std::move(cert), std::move(key)};
}

void ca_engine::event(const std::string& line) const {
    if (options_.event_log)
        options_.event_log(line);
}

void ca_engine::switch_over(time_point now) {
    // Rule 7: the shadow becomes the active CA, the old one is archived; one transaction.
    store_->transact([&] {
        store_->set_ca_state(ca_.generation, ca_state::archived);
        store_->set_ca_state(shadow_->generation, ca_state::active);
    });
    archived_.push_back(std::move(ca_.cert));
    ca_ = std::move(*shadow_);
    shadow_.reset();
    write_private_file(ca_pem_path(), to_pem(ca_.cert.get()));
    // The CRL is issued by the new key from now on (rule 7).
    refresh_crl(now);
    event(fmt::format(
        "%PKI-6-CS_ROLLOVER_ACTIVE: CS Rollover certificate has become active "
        "(fingerprint {}, valid until {}); the previous CA certificate is archived",
        md5_fingerprint(ca_.cert.get()), timers::to_ios_time(not_after(ca_.cert.get()))));
}

void ca_engine::cancel_shadow() {
    const std::string overlap = overlap_key(options_.server.auto_rollover);
    store_->transact([&] {
        store_->set_ca_state(shadow_->generation, ca_state::cancelled);
        store_->set_meta("rollover_cancelled_generation", std::to_string(ca_.generation));
        store_->set_meta("rollover_cancelled_overlap", overlap);
    });
    cancelled_generations_.push_back(shadow_->generation);
    shadow_.reset();
    cancelled_for_ = ca_.generation;
    cancelled_overlap_ = overlap;
}

std::string ca_engine::rollover_command(std::span<const std::string_view> args, time_point now,
                                        bool& ok) {
    ok = true;
    if (args.empty()) {
        // IOS `crypto pki server NAME rollover`: make the shadow now (research §1.1). The
        // messages are ours; IOS's exact wording is not in the stored material.
        if (shadow_) {
            ok = false;
            return fmt::format(
                "% Rollover CA certificate already exists (fingerprint {}); "
                "\"rollover cancel\" removes it\n",
                md5_fingerprint(shadow_->cert.get()));
        }
        generate_shadow(true);
        std::string out =
            fmt::format("% Rollover CA certificate generated: fingerprint {}, valid {} to {}\n",
                        md5_fingerprint(shadow_->cert.get()),
                        timers::to_ios_time(not_before(shadow_->cert.get())),
                        timers::to_ios_time(not_after(shadow_->cert.get())));
        // Rollover when the CA has already expired: the switchover is due at once.
        catch_up(now);
        return out;
    }
    if (args.size() == 1 && args[0] == "cancel") {
        if (!shadow_) {
            ok = false;
            return "% No rollover CA certificate to cancel\n";
        }
        const std::string fp = md5_fingerprint(shadow_->cert.get());
        cancel_shadow();
        return fmt::format("% Rollover CA certificate {} removed\n", fp);
    }
    ok = false;
    return "% Usage: rollover [cancel]\n";
}

// ---------------------------------------------------------------------------------------------
// SCEP operations.

void ca_engine::before(time_point now) {
    catch_up(now);
    // Requests may change; tick() re-reads the next expiry once.
    expiry_dirty_ = true;
}

std::optional<time_point> ca_engine::static_until(time_point now) const {
    // What catch_up() does by itself to the certificates: make the shadow, switch over.
    auto t = auto_shadow_time(now);
    if (shadow_) {
        const auto s = timers::switchover_time(not_after(ca_.cert.get()));
        t = t ? std::min(*t, s) : s;
    }
    return t;
}

std::vector<X509*> ca_engine::ca_cert_chain() const {
    return {ca_.cert.get()};
}

std::string ca_engine::ca_caps() const {
    // Model rule 5: GetNextCACert only while a shadow exists.
    return get_ca_caps_body(shadow_.has_value());
}

std::optional<enrollment_engine::next_ca> ca_engine::next_ca_certs() const {
    if (!shadow_)
        return std::nullopt;
    return next_ca{{shadow_->cert.get()},
                   ca_.cert.get(),
                   ca_.key.get(),
                   digest_nid_for(options_.server.hash),
                   fmt::format("rollover CA {}", md5_fingerprint(shadow_->cert.get()))};
}

namespace {
// "/a/b?x=1" of "http://host:port/a/b?x=1" (a cdp-url), or the text itself when it has no
// scheme; empty when there is nothing after the host.
std::string_view path_and_query(std::string_view url) {
    if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
        const auto slash = url.find('/', scheme + 3);
        return slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
    }
    return url;
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}
}  // namespace

bool ca_engine::is_resource(std::string_view target) const {
    const auto qpos = target.find('?');
    const auto path = target.substr(0, qpos);
    if (path == fmt::format("/crl/{}.crl", options_.server.name))
        return true;
    if (const auto cdp = path_and_query(options_.server.cdp_url); !cdp.empty() && cdp == target)
        return true;
    // GET .../pkiclient.exe?operation=GetCRL: what IOS writes as its own CDP.
    constexpr std::string_view scep = "/pkiclient.exe";
    if (qpos == std::string_view::npos || path.size() < scep.size() ||
        path.substr(path.size() - scep.size()) != scep)
        return false;
    for (auto q = target.substr(qpos + 1); !q.empty();) {
        const auto amp = q.find('&');
        const auto pair = q.substr(0, amp);
        if (pair.size() > 10 && iequal(pair.substr(0, 10), "operation=") &&
            iequal(pair.substr(10), "GetCRL"))
            return true;
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    }
    return false;
}

http_answer ca_engine::ocsp(byte_view der) {
    // Issue 11 §2.9 (ocsp.hpp): every CA generation this store holds, answered from the store.
    const time_point now = clock_.now();
    before(now);
    if (!ocsp_)
        ocsp_ = std::make_unique<ocsp_responder>(*store_, options_, [this](int generation) {
            if (generation == ca_.generation)
                return ca_.key.get();
            return shadow_ && generation == shadow_->generation ? shadow_->key.get() : nullptr;
        });
    return ocsp_->answer(der, now);
}

http_answer ca_engine::resource(std::string_view target) {
    before(clock_.now());
    if (!is_resource(target))
        return {404, "text/plain", "not found\n", false, "no such resource"};
    // RFC 5280 §4.2.1.13 / RFC 2585 §4.2: a DER CRL as application/pkix-crl.
    return {200, "application/pkix-crl", as_string(to_der(crl_.get())), false,
            fmt::format("CRL, next update {}", timers::to_iso8601(crl_next_update_))};
}

std::string ca_engine::no_next_ca_text() const {
    return "no rollover CA certificate";
}

x509_ptr ca_engine::issue(const request_record& r, time_point now, std::string& error_text) {
    // The CSR as the request brought it when it is issued on arrival; parsed from the store
    // otherwise (a grant, a restart).
    std::optional<x509_req_ptr> parsed;
    X509_REQ* csr = r.parsed_csr;
    if (!csr) {
        auto p = x509_req_from_der(r.csr_der);
        if (!p) {
            error_text = "stored CSR unreadable";
            return nullptr;
        }
        parsed = std::move(*p);
        csr = parsed->get();
    }
    if (std::find(cancelled_generations_.begin(), cancelled_generations_.end(), r.ca_generation) !=
        cancelled_generations_.end()) {
        error_text = "the rollover CA certificate was cancelled";
        return nullptr;
    }
    // Rule 6: a request that came encrypted to the shadow is issued by the shadow while it is
    // one; after the switchover the shadow is the active CA and rule 2 applies. Requests of an
    // archived generation are issued by the active CA (the old one has expired).
    const bool by_shadow = shadow_ && r.ca_generation == shadow_->generation;
    const ca_key_pair& issuer = by_shadow ? *shadow_ : ca_;
    const auto validity =
        by_shadow ? timers::rollover_id_validity(
                        options_.server.cert_lifetime,
                        {not_before(issuer.cert.get()), not_after(issuer.cert.get())})
                  // Rule 2: notBefore = grant time, notAfter truncated at the CA's notAfter.
                  // Issue 11 §2.7: never before the CA's notBefore (a clock that went back,
                  // --allow-clock-backwards).
                  : timers::issued_validity(options_.server.cert_lifetime,
                                            std::max(now, not_before(issuer.cert.get())),
                                            not_after(issuer.cert.get()));
    if (validity.not_after <= validity.not_before) {
        error_text = "the CA certificate has expired";
        return nullptr;
    }
    issue_options o;
    o.validity = validity;
    o.hash = options_.server.hash;
    o.cdp_url = options_.server.cdp_url;
    o.aia_ocsp_url = options_.aia_ocsp_url;  // issue 11 §2.9
    o.aia_ca_issuers_url = options_.aia_ca_issuers_url;
    // Issue 11 §2.4: the server's `eku` wins; without one, a requested extendedKeyUsage is
    // copied. subjectAltName is copied (the renewal rule keeps it); everything else requested
    // (basicConstraints CA:TRUE, keyUsage, nameConstraints, ...) is never copied.
    o.eku = options_.server.eku;
    o.copy_requested_extensions = true;
    // The certificate is signed, stored and sent, never used for its key here: the CSR's
    // SubjectPublicKeyInfo is copied without OpenSSL 3.0's encoder + decoder (issue 12 §3).
    o.attach_key = false;
    // Research §5: a CSR with OU=ioscs RA asks for an RA certificate (signs CertReps, clients
    // encrypt to it: cert_profile::registration_authority).
    if (is_ra_subject(X509_REQ_get_subject_name(csr)))
        o.profile = cert_profile::registration_authority;
    x509_ptr cert;
    const auto serial = store_->issue(r.id, [&](std::uint64_t s) {
        o.serial = s;
        auto made = issue_certificate(csr, issuer.cert.get(), issuer.key.get(), o);
        if (!made)
            throw store_error("issue: " + made.error().message());
        cert = std::move(*made);
        return store::built_certificate{to_der(cert.get()), subject_string(cert.get()),
                                        not_before(cert.get()), not_after(cert.get())};
    });
    write_database_files(serial, cert.get());
    return cert;
}

void ca_engine::write_database_files(std::uint64_t serial, X509* cert) {
    // IOS `database level complete`: "all issued certs written as <serialnum>.cer".
    if (options_.server.db_level != timers::database_level::complete)
        return;
    // Issue 12 §3: after the commit, never before (a file names a committed certificate), and
    // without an fsync of its own: the database holds the certificate durably and start-up
    // rewrites a missing or differing file from it (store::repair_certificate_files, issue 13).
    unwritten_files_.push_back({serial, to_der(cert)});
    if (!store_->in_transaction())
        after_commit();
}

void ca_engine::after_commit() {
    auto files = std::move(unwritten_files_);
    unwritten_files_.clear();
    for (const auto& f : files) {
        // Only what committed: a savepoint rolled back (an enrollment that failed inside a
        // batch) leaves its serial free, possibly re-used by a later certificate of the batch.
        const auto stored = store_->certificate(f.serial);
        if (!stored || stored->der != f.der)
            continue;
        write_file_atomically(options_.data_dir / certificate_file_name(f.serial), as_string(f.der),
                              file_sync::none);
    }
}

// ---------------------------------------------------------------------------------------------
// Operator commands.

void ca_engine::add_commands() {
    core_->add_command("rollover", [this](std::span<const std::string_view> a, time_point now) {
        bool ok = true;
        auto text = rollover_command(a, now, ok);
        return admin_result{ok, std::move(text)};
    });
    core_->add_command("revoke", [this](std::span<const std::string_view> a, time_point now) {
        // IOS: `revoke SERIAL`. pkisim addition (issue 11 §2.9): an optional RFC 5280 reason,
        // written into the CRL entry and answered by OCSP.
        std::optional<int> reason;
        if (a.size() == 2) {
            reason = crl_reason_from_name(a[1]);
            if (!reason) {
                return admin_result{false, fmt::format("% Unknown revocation reason '{}' (one of "
                                                       "{})\n",
                                                       a[1], crl_reason_names())};
            }
        }
        if (a.size() != 1 && a.size() != 2)
            return admin_result{false, "% Usage: revoke SERIAL [REASON]\n"};
        // IOS `revoke SERIAL` takes hex (what `show ... certificates` prints); accept 0x too.
        auto text = a[0];
        if (text.size() > 2 && (text.substr(0, 2) == "0x" || text.substr(0, 2) == "0X"))
            text.remove_prefix(2);
        auto serial = parse_u64(text, 16);
        if (serial && (serial_u64(ca_.cert.get()) == *serial ||
                       (shadow_ && serial_u64(shadow_->cert.get()) == *serial))) {
            return admin_result{false, "% The CA certificate cannot be revoked by its own CRL\n"};
        }
        if (!serial || !store_->revoke(*serial, now, reason))
            return admin_result{false,
                                fmt::format("% Certificate with serial {} not found\n", a[0])};
        refresh_crl(now);
        return admin_result{true,
                            fmt::format("% Certificate {:X} succesfully revoked.\n", *serial)};
    });
    core_->add_command("show", [this](std::span<const std::string_view> a, time_point now) {
        if (a.size() == 1) {
            if (a[0] == "server")
                return admin_result{true, show_server(now)};
            if (a[0] == "requests")
                return admin_result{true, show_requests(now)};
            if (a[0] == "certificates")
                return admin_result{true, show_certificates()};
            if (a[0] == "timers")
                return admin_result{true, show_timers(now)};
            if (a[0] == "pkisim")
                return admin_result{true, show_pkisim()};
        }
        return admin_result{false, "% Usage: show server|requests|certificates|timers|pkisim\n"};
    });
}

std::string ca_engine::show_server(time_point now) {
    // ios-pki-research.md §1.4 layout.
    const auto& s = options_.server;
    std::string out = fmt::format("Certificate Server {}:\n", s.name);
    out += "    Status: enabled\n    State: enabled\n";
    out += "    Server's configuration is locked  (enter \"shut\" to unlock it)\n";
    out += fmt::format("    Issuer name: {}\n", s.issuer_name);
    out += fmt::format("    CA cert fingerprint: {}\n", md5_fingerprint(ca_.cert.get()));
    out += fmt::format("    Granting mode is: {}\n", grant_text(s.grant));
    out += fmt::format("    Last certificate issued serial number (hex): {:X}\n",
                       store_->last_serial());
    out += fmt::format("    CA certificate expiration timer: {}\n",
                       timers::to_ios_time(not_after(ca_.cert.get())));
    out += fmt::format("    CRL NextUpdate timer: {}\n", timers::to_ios_time(crl_next_update_));
    // IOS prints the `database url` (default nvram:); the host folder is in `show pkisim`.
    out += "    Current primary storage dir: nvram:\n";
    out += fmt::format("    Database Level: {}\n", db_level_text(s.db_level));
    if (s.auto_rollover) {
        out += fmt::format("    Auto-Rollover configured, overlap period {}\n",
                           overlap_text(*s.auto_rollover));
        // Research §1.4 [OBS]: Autorollover timer = CA certificate expiration timer − overlap.
        if (auto t = timers::shadow_generation_time(not_after(ca_.cert.get()), s.auto_rollover)) {
            out += fmt::format("    Autorollover timer: {}\n", timers::to_ios_time(*t));
        }
    }
    if (shadow_) {
        // Research §1.4 [DOC-recalled] (IOS configuration guide example).
        out += "    Rollover status: available for rollover\n";
        out += fmt::format("    Rollover CA cert fingerprint: {}\n",
                           md5_fingerprint(shadow_->cert.get()));
        out += fmt::format("    Rollover CA cert expiration time: {}\n",
                           timers::to_ios_time(not_after(shadow_->cert.get())));
    } else if (auto_shadow_time(now)) {
        // Unverified wording: research §1.4 believes IOS prints `pending` before generation.
        out += "    Rollover status: pending\n";
    } else if (auto_rollover_cancelled()) {
        // Our wording (nothing known from IOS): the operator's `rollover cancel` holds.
        out += "    Rollover status: cancelled\n";
    }
    return out;
}

std::string ca_engine::show_requests(time_point /*now*/) {
    // ios-pki-research.md §1.3 layout, newest request first as in the IOS captures. Research
    // §1.3/§5: requests whose subject has OU=ioscs RA are RA certificate requests.
    std::string ra_rows;
    std::string router_rows;
    auto requests = store_->requests();
    std::sort(requests.begin(), requests.end(),
              [](const request_record& a, const request_record& b) { return a.id > b.id; });
    for (const auto& r : requests) {
        auto csr = x509_req_from_der(r.csr_der);
        const bool ra = csr && is_ra_subject(X509_REQ_get_subject_name(csr->get()));
        (ra ? ra_rows : router_rows) += request_row(r);
    }
    return "Enrollment Request Database:\n\n" +
           request_section("Subordinate CA certificate requests", "") + "\n" +
           request_section("RA certificate requests", ra_rows) + "\n" +
           request_section("Router certificates requests", router_rows);
}

std::string ca_engine::show_certificates() {
    // ios-pki-research.md §1.3 layout; subjects as IOS prints them (RDNs blank-separated).
    std::string out{certificate_header};
    for (const auto& c : store_->certificates()) {
        std::string subject = c.subject;
        if (auto cert = x509_from_der(c.der))
            subject = ios_name(X509_get_subject_name(cert->get()), ' ');
        out += certificate_row(fmt::format("{:X}", c.serial), c.not_before, c.not_after, subject);
    }
    return out;
}

std::string ca_engine::show_timers(time_point now) {
    // ios-pki-research.md §3.2 grammar and section order: header, soonest timer, then one line
    // per timer; sections without timers are left out.
    std::vector<timer_entry> pki;
    for (const auto& r : store_->requests()) {
        if (r.state == request_state::pending) {
            pki.push_back({r.expires, fmt::format("ER EXPIRE {}", r.id)});
        }
    }
    // CS(name): the CA certificate's expiry alert; alerts stop once a rollover certificate that
    // starts by the current one's end exists (research §2, S6).
    std::vector<timer_entry> alerts;
    if (!shadow_) {
        if (auto t = timers::next_expiry_alert(not_after(ca_.cert.get()), now))
            alerts.push_back({*t, fmt::format("CS({})", options_.server.name)});
    }
    // The CS's own trustpoint holds its CRL (research §3.2 fixture: `CRL EXPIRE cn=root`,
    // `CRL UPDATE *cn=root` at the CRL's nextUpdate).
    const auto issuer = ios_name(X509_get_subject_name(ca_.cert.get()), ',');
    std::vector<timer_entry> crl{{crl_next_update_, fmt::format("CRL EXPIRE {}", issuer)},
                                 {crl_next_update_, fmt::format("CRL UPDATE *{}", issuer)}};
    std::vector<timer_entry> cs{{crl_next_update_, "CS CRL UPDATE"}};
    // Research §3.2: CS SHADOW CERT GENERATION until the shadow exists, CS CERT EXPIRE at the
    // switchover.
    if (auto t = auto_shadow_time(now))
        cs.push_back({*t, "CS SHADOW CERT GENERATION"});
    cs.push_back({timers::switchover_time(not_after(ca_.cert.get())), "CS CERT EXPIRE"});
    return timer_section("PKI Timers", std::move(pki), now) +
           timer_section("Expiry Alert Timers", std::move(alerts), now) +
           timer_section("CRL Timers", std::move(crl), now) +
           timer_section("CS Timers", std::move(cs), now);
}

std::string ca_engine::show_pkisim() {
    // What IOS does not print, kept out of the IOS layouts above.
    std::string out = pkisim_section_title(options_.server.name);
    out += fmt::format("    Data folder: {}\n", options_.data_dir.string());
    out += fmt::format("    CA certificate file: {}\n", ca_pem_path().string());
    out += fmt::format("    CRL file: {} (also at /crl/{}.crl)\n", crl_path().string(),
                       options_.server.name);
    std::string revoked;
    for (const auto& c : store_->revoked())
        revoked += fmt::format("{}{:X}", revoked.empty() ? "" : " ", c.serial);
    out += fmt::format("    Revoked serials (hex): {}\n", revoked.empty() ? "none" : revoked);
    return out;
}

}  // namespace pkisim::scep
