// Enrollment preparation for `pkisim bench --mode enroll`: everything that costs client RSA
// work happens here, before the clock starts (issue 12 §1: "keys generated before the clock
// starts"), so the run measures the server, not the generator.
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "bench_plan.hpp"
#include "pkisim/scep/crypto.hpp"

namespace pkisim::loadgen {

namespace {

using namespace pkisim::scep;

std::string random_hex(std::size_t n_bytes) {
    std::vector<unsigned char> b(n_bytes);
    if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    std::string s;
    for (unsigned char c : b) {
        s += fmt::format("{:02x}", c);
    }
    return s;
}

time_point wall_now() {
    return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

// Runs f(i) for i in [0, n) on all cores; the first exception is rethrown.
template <typename F>
void parallel_for(std::size_t n, F f) {
    const std::size_t workers = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1,
                                                        std::max<std::size_t>(n, 1));
    std::atomic<std::size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    std::vector<std::thread> pool;
    for (std::size_t w = 0; w < workers; ++w) {
        pool.emplace_back([&] {
            for (std::size_t i = next++; i < n; i = next++) {
                try {
                    f(i);
                } catch (...) {
                    std::lock_guard lock{error_mutex};
                    if (!error) {
                        error = std::current_exception();
                    }
                }
            }
        });
    }
    for (auto& t : pool) {
        t.join();
    }
    if (error) {
        std::rethrow_exception(error);
    }
}

}  // namespace

std::string make_http_request(const bench_plan& plan, bool post, std::string_view target,
                              const bytes* body, bool http10) {
    std::string r =
        fmt::format("{} {} HTTP/1.{}\r\nHost: {}\r\nUser-Agent: {}\r\n", post ? "POST" : "GET",
                    target, http10 ? 0 : 1, plan.host_header, ios_user_agent);
    if (post && body) {
        r += fmt::format("Content-Type: application/x-pki-message\r\nContent-Length: {}\r\n",
                         body->size());
    }
    r += "\r\n";
    if (post && body) {
        r.append(reinterpret_cast<const char*>(body->data()), body->size());
    }
    return r;
}

scep::client_options bench_client_options(const bench_options& o) {
    client_options co;
    co.url = o.url;
    co.exact_path = o.exact_path;
    co.http_version = 10;
    co.user_agent = std::string{ios_user_agent};
    co.legacy_crypto = o.legacy_crypto;
    co.ca_identifier = o.ca_identifier;
    co.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.connect_timeout);
    co.read_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.read_timeout);
    co.method = o.method == "get"    ? pki_operation_method::get
                : o.method == "post" ? pki_operation_method::post
                                     : pki_operation_method::automatic;
    return co;
}

tl::expected<void, std::string> prepare_enrollment(bench_plan& plan, const bench_options& o) {
    const auto method = plan.client->options().method;
    const scep_client& client = *plan.client;
    auto caps = client.get_ca_caps();
    if (!caps) {
        return tl::unexpected("GetCACaps: " + caps.error().message());
    }
    plan.caps = std::move(*caps);
    auto ca = client.get_ca_cert();
    if (!ca) {
        return tl::unexpected("GetCACert: " + ca.error().message());
    }
    plan.ca = std::move(*ca);
    plan.trusted_signers = plan.ca.all();
    plan.cipher_nid = plan.caps.cipher_nid(o.legacy_crypto);
    plan.digest_nid = plan.caps.digest_nid(o.legacy_crypto);
    plan.post = method == pki_operation_method::post ||
                (method == pki_operation_method::automatic && plan.caps.post_supported());
    plan.decode.allow_legacy = o.legacy_crypto;
    plan.decode.status_only = !o.decrypt;
    plan.poll_target = client.target("PKIOperation", "");

    const std::string run = random_hex(4);  // a new run never replays an earlier run's requests
    const std::size_t n_keys = std::max(1u, o.keys);
    plan.identities.resize(n_keys);
    try {
        parallel_for(n_keys, [&](std::size_t k) {
            auto& id = plan.identities[k];
            id.key = generate_rsa_key(o.key_bits);
            const auto now = wall_now();
            id.cert = make_self_signed_signer(
                id.key.get(), fmt::format("O=pkisim-bench,CN=signer-{}-{}", run, k),
                {now - std::chrono::hours{1}, now + std::chrono::hours{24 * 30}}, plan.digest_nid);
        });
    } catch (const std::exception& e) {
        return tl::unexpected(std::string{"key generation: "} + e.what());
    }

    if (o.renew) {
        // RenewalReq needs a certificate this CA issued: enroll every identity once (not timed).
        for (std::size_t k = 0; k < n_keys; ++k) {
            auto& id = plan.identities[k];
            enroll_request req;
            req.key = id.key.get();
            req.subject = fmt::format("{}-{}-id{}", o.subject_prefix, run, k);
            req.challenge = o.challenge;
            auto r =
                client.enroll(req, plan.caps, plan.ca,
                              {.interval = std::chrono::seconds{1}, .max_polls = 0, .sleep = {}});
            if (!r) {
                return tl::unexpected("first enrollment for --renew: " + r.error().message());
            }
            if (r->status != pki_status::success || !r->cert) {
                return tl::unexpected(std::string{
                    "first enrollment for --renew is PENDING: the server must grant it (grant "
                    "auto) before renewals can be measured"});
            }
            id.cert = std::move(r->cert);
        }
    }

    std::size_t pool = o.pool ? o.pool : (o.requests ? o.requests : 2000);
    plan.enrollments.resize(pool);
    X509* recipient = plan.ca.encryption ? plan.ca.encryption.get() : plan.ca.ca.get();
    const std::string prefix = o.subject_prefix;
    std::atomic<bool> failed{false};
    std::string failure;
    std::mutex failure_mutex;
    try {
        parallel_for(pool, [&](std::size_t i) {
            auto& e = plan.enrollments[i];
            e.identity = i % n_keys;
            const auto& id = plan.identities[e.identity];
            const std::string subject = fmt::format("{}-{}-{}", prefix, run, i);
            csr_options copt;
            copt.challenge_password = o.challenge;
            copt.digest_nid = plan.digest_nid;
            auto csr = make_csr(id.key.get(), subject, copt);
            e.subject = copy(X509_REQ_get_subject_name(csr.get()));
            e.transaction_id = random_hex(16);
            request_params p;
            p.type = o.renew ? message_type::renewal_req : message_type::pkcs_req;
            p.message_data = to_der(csr.get());
            p.signer_cert = id.cert.get();
            p.signer_key = id.key.get();
            p.recipients = {recipient};
            p.cipher_nid = plan.cipher_nid;
            p.digest_nid = plan.digest_nid;
            p.transaction_id = e.transaction_id;
            p.signing_time = wall_now();
            auto der = encode_pki_request(p);
            if (!der) {
                std::lock_guard lock{failure_mutex};
                failed = true;
                failure = der.error().message();
                return;
            }
            e.http = plan.post ? make_http_request(plan, true, plan.poll_target, &*der, true)
                               : make_http_request(
                                     plan, false,
                                     client.target("PKIOperation", encode_get_message(*der, false)),
                                     nullptr, true);
        });
    } catch (const std::exception& e) {
        return tl::unexpected(std::string{"building requests: "} + e.what());
    }
    if (failed) {
        return tl::unexpected("building requests: " + failure);
    }
    return {};
}

std::string bench_plan::cert_poll_request(const prepared_enrollment& e) const {
    const auto& id = identities[e.identity];
    request_params p;
    p.type = message_type::cert_poll;
    p.message_data = encode_issuer_and_subject(X509_get_subject_name(ca.ca.get()), e.subject.get());
    p.signer_cert = id.cert.get();
    p.signer_key = id.key.get();
    p.recipients = {ca.encryption ? ca.encryption.get() : ca.ca.get()};
    p.cipher_nid = cipher_nid;
    p.digest_nid = digest_nid;
    p.transaction_id = e.transaction_id;
    p.signing_time = wall_now();
    auto der = encode_pki_request(p);
    if (!der) {
        return {};
    }
    return post ? make_http_request(*this, true, poll_target, &*der, true)
                : make_http_request(*this, false,
                                    client->target("PKIOperation", encode_get_message(*der, false)),
                                    nullptr, true);
}

outcome bench_plan::classify_cert_rep(std::string_view body, const prepared_enrollment& e) const {
    const auto& id = identities[e.identity];
    const byte_view der{reinterpret_cast<const unsigned char*>(body.data()), body.size()};
    auto rep = decode_cert_rep(der, id.cert.get(), id.key.get(), trusted_signers, decode);
    if (!rep) {
        return outcome::bad_response;
    }
    switch (rep->status) {
        case pki_status::success:
            if (!decode.status_only && rep->certs.empty()) {
                return outcome::bad_response;
            }
            return outcome::scep_success;
        case pki_status::pending:
            return outcome::scep_pending;
        case pki_status::failure:
            break;
    }
    switch (rep->failure.value_or(fail_info::bad_request)) {
        case fail_info::bad_alg:
            return outcome::scep_failure_bad_alg;
        case fail_info::bad_message_check:
            return outcome::scep_failure_bad_message_check;
        case fail_info::bad_request:
            return outcome::scep_failure_bad_request;
        case fail_info::bad_time:
            return outcome::scep_failure_bad_time;
        case fail_info::bad_cert_id:
            return outcome::scep_failure_bad_cert_id;
    }
    return outcome::scep_failure_bad_request;
}

}  // namespace pkisim::loadgen
