// Issue 12 §3: PKIOperation in stages (service.hpp): decode on any thread, one batch on the
// engine thread in one transaction (group commit), the CertRep signed on any thread; and the
// same through the real server's worker pool. Real OpenSSL, real SQLite, real sockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::grant_mode;

// Runs fn(i) for i in [0, n) on `threads` threads at once (the workers' side).
template <typename Fn>
void on_threads(std::size_t n, unsigned threads, Fn fn) {
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            for (std::size_t i = next++; i < n; i = next++)
                fn(i);
        });
    }
    for (auto& t : pool)
        t.join();
}

cert_rep decode_reply(const http_answer& a, const client& c, X509* ca) {
    EXPECT_EQ(a.status, 200u) << a.detail;
    std::array<X509*, 1> trusted{ca};
    auto rep =
        decode_cert_rep(bytes(a.body.begin(), a.body.end()), c.self_signed.get(), c.key, trusted);
    EXPECT_TRUE(rep.has_value()) << a.detail;
    return rep ? std::move(*rep) : cert_rep{};
}

bytes file_bytes(const std::filesystem::path& p) {
    const auto s = read_file(p.string());
    return {s.begin(), s.end()};
}

struct batch_fixture {
    batch_fixture() {
        load_providers(false);
        options = lab_engine_options(dir.path, grant_mode::auto_grant);
        options.server.db_level = timers::database_level::complete;
        options.shadow_key_pems = {private_key_to_pem(fixture_key("rollover1"))};
        engine = std::make_unique<ca_engine>(options, clock);
    }
    // Prepared on 2 threads at once, processed as ONE batch, finished on 2 threads at once.
    std::vector<http_answer> run_batch(const std::vector<bytes>& requests) {
        std::vector<std::unique_ptr<pki_job>> jobs(requests.size());
        on_threads(requests.size(), 2,
                   [&](std::size_t i) { jobs[i] = engine->pki_prepare(requests[i]); });
        engine->pki_process(jobs);
        std::vector<http_answer> out(requests.size());
        on_threads(requests.size(), 2,
                   [&](std::size_t i) { out[i] = engine->pki_finish(*jobs[i]); });
        return out;
    }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    engine_options options;
    std::unique_ptr<ca_engine> engine;
};

TEST(pki_batch, one_batch_issues_each_serial_once_and_a_refused_request_changes_nothing_else) {
    batch_fixture f;
    std::vector<client> clients;
    for (int i = 0; i < 6; ++i) {
        // Request 2 carries a wrong challenge; the others are good.
        clients.push_back(make_client(i % 2 ? "client1" : "client2",
                                      fmt::format("CN=batch-{},O=lab", i),
                                      i == 2 ? std::string{"wrong"} : std::string{"secret"}));
    }
    std::vector<bytes> requests;
    for (const auto& c : clients)
        requests.push_back(c.pkcs_req({f.engine->ca_certificate()}));
    requests.push_back(bytes{0x30, 0x03, 0x02, 0x01, 0x00});  // not a pkiMessage: HTTP 400

    // Warm-up batch of one: the workers' key snapshot is published by the first batch.
    const auto first = f.run_batch({requests[0]});
    ASSERT_EQ(decode_reply(first[0], clients[0], f.engine->ca_certificate()).status,
              pki_status::success);

    const auto answers = f.run_batch({requests.begin() + 1, requests.end()});
    ASSERT_EQ(answers.size(), 6u);
    std::set<std::uint64_t> serials{2};  // the warm-up's
    for (std::size_t i = 1; i < clients.size(); ++i) {
        auto rep = decode_reply(answers[i - 1], clients[i], f.engine->ca_certificate());
        if (i == 2) {
            EXPECT_EQ(rep.status, pki_status::failure);
            EXPECT_EQ(rep.failure, fail_info::bad_request);
            continue;
        }
        ASSERT_EQ(rep.status, pki_status::success) << answers[i - 1].detail;
        ASSERT_EQ(rep.certs.size(), 1u);
        X509* cert = rep.certs.front().get();
        EXPECT_EQ(subject_string(cert), fmt::format("CN=batch-{},O=lab", i));
        const auto serial = serial_u64(cert).value_or(0);
        EXPECT_TRUE(serials.insert(serial).second) << "serial " << serial << " twice";
        // Committed, and its file written after the commit (no sync of its own), equal to it.
        const auto stored = f.engine->database().certificate(serial);
        ASSERT_TRUE(stored);
        EXPECT_EQ(stored->der, to_der(cert));
        EXPECT_EQ(file_bytes(f.options.data_dir / certificate_file_name(serial)), stored->der);
    }
    EXPECT_EQ(answers.back().status, 400u);
    // Serials 2..6 without a gap: the refused request consumed none.
    EXPECT_EQ(serials, (std::set<std::uint64_t>{2, 3, 4, 5, 6}));
    EXPECT_EQ(f.engine->database().last_serial(), 6u);
    // The refused request is stored rejected (never pending), with the others' transaction.
    int rejected = 0;
    for (const auto& r : f.engine->database().requests()) {
        EXPECT_NE(r.state, request_state::pending);
        rejected += r.state == request_state::rejected;
    }
    EXPECT_LE(rejected, 1);
    EXPECT_EQ(f.engine->database().integrity_check(), "ok");
    for (const auto& e : std::filesystem::directory_iterator{f.options.data_dir})
        EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
}

TEST(pki_batch, keys_that_change_between_decoding_and_the_batch_are_used_as_a_single_call_would) {
    batch_fixture f;
    auto a = make_client("client1", "CN=before-rollover,O=lab");
    // Publish the current keys, then decode a request with them on a worker.
    ASSERT_EQ(f.run_batch({a.pkcs_req({f.engine->ca_certificate()})})[0].status, 200u);
    auto b = make_client("client2", "CN=decoded-before,O=lab");
    std::vector<std::unique_ptr<pki_job>> jobs;
    jobs.push_back(f.engine->pki_prepare(b.pkcs_req({f.engine->ca_certificate()})));
    // The operator makes the shadow CA meanwhile (rule 3): the engine's keys change.
    ASSERT_TRUE(f.engine->admin("rollover").ok);
    ASSERT_NE(f.engine->shadow_certificate(), nullptr);
    f.engine->pki_process(jobs);
    auto rep = decode_reply(f.engine->pki_finish(*jobs[0]), b, f.engine->ca_certificate());
    ASSERT_EQ(rep.status, pki_status::success);
    EXPECT_EQ(issuer_string(rep.certs.front().get()), subject_string(f.engine->ca_certificate()));

    // A request encrypted to the shadow: the next snapshot has its key (rule 6: the shadow
    // issues it, and signs the reply).
    auto c = make_client("client1", "CN=to-the-shadow,O=lab");
    X509* shadow = f.engine->shadow_certificate();
    const auto answers = f.run_batch({c.pkcs_req({shadow})});
    auto shadow_rep = decode_reply(answers[0], c, shadow);
    ASSERT_EQ(shadow_rep.status, pki_status::success) << answers[0].detail;
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(shadow_rep.certs.front().get()), c.key));
    std::array<X509*, 1> by_shadow{shadow};
    EXPECT_TRUE(verify_signer_chain(shadow_rep.certs.front().get(), by_shadow,
                                    test_epoch() + timers::days{1095} + timers::days{1}));
}

TEST(pki_batch, a_request_decoded_for_a_shadow_cancelled_before_the_batch_is_refused_as_alone) {
    batch_fixture f;
    ASSERT_TRUE(f.engine->admin("rollover").ok);
    X509* shadow = f.engine->shadow_certificate();
    ASSERT_NE(shadow, nullptr);
    // Publish {CA, shadow}, then decode a request encrypted to the shadow (recipient 1).
    auto a = make_client("client1", "CN=publish,O=lab");
    ASSERT_EQ(f.run_batch({a.pkcs_req({f.engine->ca_certificate()})})[0].status, 200u);
    auto d = make_client("client2", "CN=to-a-cancelled-shadow,O=lab");
    const auto der = d.pkcs_req({shadow});
    std::vector<std::unique_ptr<pki_job>> jobs;
    jobs.push_back(f.engine->pki_prepare(der));
    // `rollover cancel` before the batch: the shadow's key is gone, so the request is not for
    // us any more (a single call now refuses it); the decoding made with the old keys must not
    // get it issued by the CA instead.
    ASSERT_TRUE(f.engine->admin("rollover cancel").ok);
    ASSERT_EQ(f.engine->shadow_certificate(), nullptr);
    f.engine->pki_process(jobs);
    const auto batched = f.engine->pki_finish(*jobs[0]);
    const auto last_serial = f.engine->database().last_serial();
    const auto alone = f.engine->pki_operation(der);
    EXPECT_EQ(batched.status, alone.status);
    EXPECT_EQ(batched.detail, alone.detail);
    EXPECT_EQ(batched.detail.find("SUCCESS"), std::string::npos) << batched.detail;
    EXPECT_EQ(f.engine->database().last_serial(), last_serial);  // nothing issued
}

TEST(pki_batch, concurrent_clients_through_the_worker_pool_get_distinct_committed_serials) {
    test_server s{grant_mode::auto_grant};
    constexpr int clients = 12;
    std::vector<client> cs;
    for (int i = 0; i < clients; ++i)
        cs.push_back(
            make_client(i % 2 ? "client1" : "client2", fmt::format("CN=pool-{},O=lab", i)));
    std::vector<bytes> reqs;
    for (const auto& c : cs)
        reqs.push_back(c.pkcs_req({s.ca()}));
    std::vector<raw_response> got(clients);
    on_threads(clients, clients, [&](std::size_t i) { got[i] = pki_post(s.port(), reqs[i]); });
    std::set<std::uint64_t> serials;
    for (int i = 0; i < clients; ++i) {
        ASSERT_EQ(got[i].status, 200u) << got[i].head;
        auto rep = decode_reply(http_answer{200, "", got[i].body, false, ""}, cs[i], s.ca());
        ASSERT_EQ(rep.status, pki_status::success);
        EXPECT_TRUE(serials.insert(serial_u64(rep.certs.front().get()).value_or(0)).second);
    }
    EXPECT_EQ(serials.size(), static_cast<std::size_t>(clients));
    EXPECT_EQ(*serials.begin(), 2u);
    EXPECT_EQ(*serials.rbegin(), static_cast<std::uint64_t>(clients + 1));
}

}  // namespace
}  // namespace pkisim::scep
