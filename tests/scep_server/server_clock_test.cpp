// Issue 11 §2.7: a clock that runs backwards. The store keeps the latest time it has seen
// (store::clock_high_water, raised at start-up and by the server's tick); an engine started
// earlier than that, or earlier than its active CA's notBefore (a switchover), refuses with
// exit_status::clock_backwards unless allow_clock_backwards; then no certificate starts before
// its CA's notBefore. Manual clock, real SQLite. The real binary: interop/ocsp_clock.sh.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;

bytes as_bytes(const std::string& s) {
    return {s.begin(), s.end()};
}

struct clock_fixture {
    clock_fixture() {
        load_providers(false);
        options = lab_engine_options(dir.path, timers::grant_mode::auto_grant);
        options.shadow_key_pems = {private_key_to_pem(fixture_key("rollover1"))};
    }
    // Starts an engine at `t`; the startup_error's exit code, or 0 when it started.
    int start_at(time_point t, bool allow = false) {
        engine.reset();
        events.clear();
        clock.set(t);
        auto o = options;
        o.allow_clock_backwards = allow;
        o.event_log = [this](const std::string& line) { events.push_back(line); };
        try {
            engine = std::make_unique<ca_engine>(o, clock);
            return 0;
        } catch (const startup_error& e) {
            last_error = e.what();
            return e.exit_code();
        }
    }
    x509_ptr enroll(const client& c) {
        auto a = engine->pki_operation(c.pkcs_req({engine->ca_certificate()}));
        std::array<X509*, 1> trusted{engine->ca_certificate()};
        auto rep = decode_cert_rep(as_bytes(a.body), c.self_signed.get(), c.key, trusted);
        EXPECT_TRUE(rep && rep->status == pki_status::success && !rep->certs.empty()) << a.detail;
        return rep && !rep->certs.empty() ? std::move(rep->certs.front()) : nullptr;
    }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    engine_options options;
    std::unique_ptr<ca_engine> engine;
    std::string last_error;
    std::vector<std::string> events;
};

constexpr int clock_backwards = static_cast<int>(exit_status::clock_backwards);

TEST(clock_backwards, a_restart_earlier_than_the_recorded_time_is_refused_with_its_own_code) {
    clock_fixture f;
    const time_point t0 = test_epoch();
    ASSERT_EQ(f.start_at(t0), 0);
    // The server's tick records the clock as it runs (here 40 days later).
    f.clock.set(t0 + timers::days{40});
    f.engine->tick();
    f.engine->record_clock(f.clock.now());
    EXPECT_EQ(f.engine->database().clock_high_water(), t0 + timers::days{40});
    // A later start, and then a 2 s NTP step back, are fine.
    EXPECT_EQ(f.start_at(t0 + timers::days{41}), 0);
    EXPECT_EQ(f.start_at(t0 + timers::days{41} - std::chrono::seconds{2}), 0);
    // A day earlier: refused, saying what was seen and how to override.
    EXPECT_EQ(f.start_at(t0 + timers::days{40}), clock_backwards);
    const auto seen = timers::to_iso8601(t0 + timers::days{41});
    EXPECT_NE(f.last_error.find(seen), std::string::npos) << f.last_error;
    EXPECT_NE(f.last_error.find(timers::to_iso8601(t0 + timers::days{40})), std::string::npos)
        << f.last_error;
    EXPECT_NE(f.last_error.find("--allow-clock-backwards"), std::string::npos) << f.last_error;
    EXPECT_NE(f.last_error.find("--clock-start"), std::string::npos) << f.last_error;
    // A refused start recorded nothing (the mark is still the later time).
    EXPECT_EQ(f.start_at(t0 + timers::days{41} - std::chrono::seconds{3}), clock_backwards);
}

TEST(clock_backwards, after_a_switchover_the_new_ca_not_before_counts_even_unrecorded) {
    clock_fixture f;
    const time_point t0 = test_epoch();
    ASSERT_EQ(f.start_at(t0), 0);
    auto first = share(f.engine->ca_certificate());
    ASSERT_TRUE(f.engine->admin("rollover").ok);
    // The switchover happens in an operation just after the old CA's notAfter, and the server
    // dies before any tick recorded that time.
    const time_point switch_at = not_after(first.get()) + std::chrono::seconds{1};
    f.clock.set(switch_at);
    f.engine->get_ca_caps();
    ASSERT_NE(X509_cmp(f.engine->ca_certificate(), first.get()), 0) << "no switchover";
    const time_point new_ca_start = not_before(f.engine->ca_certificate());
    EXPECT_LT(*f.engine->database().clock_high_water(), new_ca_start);
    // Restarted with the original --clock-start: refused.
    EXPECT_EQ(f.start_at(t0 + timers::days{1}), clock_backwards);
    EXPECT_NE(f.last_error.find(timers::to_iso8601(new_ca_start)), std::string::npos)
        << f.last_error;

    // The operator insists: it starts, says so in the log, and what it issues starts no
    // earlier than its CA's notBefore (ends no later than its notAfter).
    ASSERT_EQ(f.start_at(t0 + timers::days{1}, true), 0);
    ASSERT_EQ(f.events.size(), 1u);
    EXPECT_NE(f.events.front().find("CLOCK_BACKWARDS"), std::string::npos) << f.events.front();
    EXPECT_NE(f.events.front().find("notBefore"), std::string::npos) << f.events.front();
    auto cert = f.enroll(make_client("client1", "CN=router1,O=lab"));
    ASSERT_TRUE(cert);
    EXPECT_GE(not_before(cert.get()), not_before(f.engine->ca_certificate()));
    EXPECT_LE(not_after(cert.get()), not_after(f.engine->ca_certificate()));
    EXPECT_GT(not_after(cert.get()), not_before(cert.get()));
    // The override does not lower the mark: the next plain start is refused again.
    EXPECT_EQ(f.start_at(t0 + timers::days{1}), clock_backwards);
}

TEST(clock_backwards, the_mark_is_durable_and_never_lowered) {
    temp_dir dir;
    const time_point t = test_epoch();
    {
        store db{dir.path / "pkisim.db"};
        EXPECT_FALSE(db.clock_high_water());
        db.raise_clock_high_water(t);
        db.raise_clock_high_water(t - timers::days{3});  // lower: ignored
        EXPECT_EQ(db.clock_high_water(), t);
    }
    store reopened{dir.path / "pkisim.db"};
    EXPECT_EQ(reopened.clock_high_water(), t);
    reopened.raise_clock_high_water(t + std::chrono::milliseconds{1});
    EXPECT_EQ(reopened.clock_high_water(), t + std::chrono::milliseconds{1});
}

}  // namespace
}  // namespace pkisim::scep
