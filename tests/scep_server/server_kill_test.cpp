// Issue 3 §5: kill -9 the real `pkisim serve` at random (seeded) moments while a client enrolls,
// restart it, and show that every certificate a client received is in the store, that no serial
// repeats and that pending requests survive.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/server.hpp"
#include "pkisim/scep/store.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;

// A `pkisim serve` child process; its first stdout line carries the listening address.
class child_server {
  public:
    child_server(const std::filesystem::path& dir, const std::string& config) {
        int out[2];
        if (::pipe(out) != 0)
            throw std::runtime_error("pipe");
        const std::string data = (dir / "data").string();
        const std::string config_path = (dir / config).string();
        const std::string pass = (dir / "passphrase").string();
        const std::string challenge = (dir / "challenge").string();
        const std::string err = (dir / "stderr.log").string();
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            ::dup2(fd, STDERR_FILENO);
            ::close(out[0]);
            ::execl(PKISIM_BINARY, PKISIM_BINARY, "serve", config_path.c_str(), "--data",
                    data.c_str(), "--listen", "127.0.0.1:0", "--passphrase-file", pass.c_str(),
                    "--challenge-file", challenge.c_str(), "--ios-limits", "off",
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        out_ = out[0];
        // Read "... listening on http://127.0.0.1:PORT/..." (10 s budget for key generation).
        std::string line;
        pollfd p{out_, POLLIN, 0};
        while (line.find('\n') == std::string::npos && ::poll(&p, 1, 10'000) > 0) {
            char buf[256];
            const auto n = ::read(out_, buf, sizeof buf);
            if (n <= 0)
                break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        const auto at = line.find("127.0.0.1:");
        if (at == std::string::npos)
            throw std::runtime_error("server did not start: " + line);
        port_ = static_cast<unsigned short>(std::stoi(line.substr(at + 10)));
    }
    ~child_server() {
        if (pid_ > 0)
            kill_now();
        ::close(out_);
    }
    child_server(const child_server&) = delete;
    child_server& operator=(const child_server&) = delete;

    void kill_now() {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    int terminate() {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    unsigned short port() const { return port_; }

  private:
    pid_t pid_ = -1;
    int out_ = -1;
    unsigned short port_ = 0;
};

void write_text(const std::filesystem::path& p, const std::string& text) {
    std::ofstream{p} << text;
    // Private, as `pkisim serve` requires of passphrase and challenge files.
    std::filesystem::permissions(
        p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// Enrolls CN=kill-<round>-<i> over and over until the server dies; returns what it received.
std::map<std::uint64_t, bytes> enroll_until_dead(unsigned short port, X509* ca, int round,
                                                 std::atomic<bool>& stop) {
    std::map<std::uint64_t, bytes> received;
    for (int i = 0; !stop; ++i) {
        try {
            auto c = make_client("client1", fmt::format("CN=kill-{}-{}", round, i), "secret");
            auto r = pki_post(port, c.pkcs_req({ca}));
            std::array<X509*, 1> trusted{ca};
            auto rep = decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted);
            if (!rep || rep->status != pki_status::success)
                break;
            X509* cert = rep->certs.front().get();
            received.emplace(*serial_u64(cert), to_der(cert));
        } catch (const std::exception&) {
            break;  // connection refused / reset: the server is gone
        }
    }
    return received;
}

TEST(kill9, every_received_certificate_survives_and_serials_never_repeat) {
    constexpr std::array<std::string_view, 3> pending_keys{"client2", "ra", "shadow"};
    load_providers(false);
    temp_dir dir;
    write_text(dir.path / "auto.ios",
               "crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto\n");
    write_text(dir.path / "manual.ios", "crypto pki server labca\n issuer-name CN=labca,O=lab\n");
    write_text(dir.path / "passphrase", "kill-test-passphrase\n");
    write_text(dir.path / "challenge", "secret\n");

    std::mt19937 rng{20'300'101};  // seeded: the kill moments replay
    std::uniform_int_distribution<int> delay_ms{30, 400};
    std::map<std::uint64_t, bytes> all_received;
    std::uint64_t repeats = 0;
    x509_ptr ca;
    for (int round = 0; round < 5; ++round) {
        child_server child{dir.path, "auto.ios"};
        if (!ca) {
            ca = x509_from_der(http_get(child.port(), "/cgi-bin/pkiclient.exe?operation=GetCACert")
                                   .body_bytes())
                     .value();
        }
        std::atomic<bool> stop{false};
        std::map<std::uint64_t, bytes> got;
        std::thread client{[&] { got = enroll_until_dead(child.port(), ca.get(), round, stop); }};
        const int delay = delay_ms(rng);
        std::this_thread::sleep_for(std::chrono::milliseconds{delay});
        child.kill_now();
        stop = true;
        client.join();
        std::cerr << "round " << round << ": killed after " << delay << " ms; the client received "
                  << got.size() << " certificates\n";
        for (auto& [serial, der] : got) {
            if (!all_received.emplace(serial, der).second)
                ++repeats;
        }
    }
    EXPECT_EQ(repeats, 0u);
    EXPECT_GT(all_received.size(), 0u);

    // Pending requests survive a kill too.
    {
        child_server child{dir.path, "manual.ios"};
        // Three keys: one transactionID each (the same key would be a replay, scep-wire §0.11).
        for (int i = 0; i < 3; ++i) {
            auto c = make_client(pending_keys[i], fmt::format("CN=pending-{}", i), "secret");
            auto r = pki_post(child.port(), c.pkcs_req({ca.get()}));
            std::array<X509*, 1> trusted{ca.get()};
            auto rep = decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted);
            ASSERT_TRUE(rep);
            EXPECT_EQ(rep->status, pki_status::pending);
        }
        child.kill_now();
    }
    {
        child_server child{dir.path, "manual.ios"};
        const auto shown = admin_call(dir.path / "data", "show requests").text;
        for (int i = 0; i < 3; ++i) {
            EXPECT_NE(shown.find(fmt::format("cn=pending-{}", i)), std::string::npos) << shown;
        }
        EXPECT_TRUE(admin_call(dir.path / "data", "grant all").ok);
        auto c = make_client(pending_keys[1], "CN=pending-1", "secret");
        auto r = pki_post(child.port(), c.cert_poll({ca.get()}, ca.get()));
        std::array<X509*, 1> trusted{ca.get()};
        auto rep = decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted);
        ASSERT_TRUE(rep);
        EXPECT_EQ(rep->status, pki_status::success);
        EXPECT_EQ(child.terminate(), 0);  // SIGTERM: clean shutdown, exit 0
    }

    store db{dir.path / "data" / "pkisim.db"};
    for (const auto& [serial, der] : all_received) {
        auto stored = db.certificate(serial);
        ASSERT_TRUE(stored) << "serial " << serial << " was received but is not in the store";
        EXPECT_EQ(stored->der, der) << "serial " << serial;
    }
    // Serials are contiguous from the CA's 1: none skipped by a crash, none reused.
    const auto certs = db.certificates();
    std::set<std::uint64_t> serials;
    for (const auto& c : certs)
        serials.insert(c.serial);
    EXPECT_EQ(serials.size(), certs.size());
    EXPECT_EQ(*serials.rbegin(), db.last_serial());
    EXPECT_EQ(serials.size(), db.last_serial());
}

// Issue 13 §2: eight clients enroll at once while the server is killed 30 times at seeded
// moments. A request its grant mode (`grant auto`) issues at once must never be left pending
// (the client's re-send after the restart must be answered SUCCESS, not PENDING), no serial is
// reused, every certificate a client got is stored, every `database level complete` file
// exists and matches, and SQLite's integrity check passes.
struct kill_client {
    std::string key;
    std::optional<client> in_flight;  // the request the kill cut off, re-sent after the restart
    bytes in_flight_der;
    int next = 0;
};

enum class outcome { success, unanswered, pending, failure };

outcome send_once(unsigned short port, X509* ca, const client& c, const bytes& der,
                  std::map<std::uint64_t, bytes>& received) {
    try {
        auto r = pki_post(port, der);
        std::array<X509*, 1> trusted{ca};
        auto rep = decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted);
        if (!rep)
            return outcome::unanswered;  // reset or cut short by the kill
        if (rep->status == pki_status::pending)
            return outcome::pending;
        if (rep->status != pki_status::success)
            return outcome::failure;
        X509* cert = rep->certs.front().get();
        received.emplace(*serial_u64(cert), to_der(cert));
        return outcome::success;
    } catch (const std::exception&) {
        return outcome::unanswered;
    }
}

// Certificates received by all clients in the current server life (the kill moments are
// counted in answers, not in wall-clock time, so a slow machine kills at the same points).
struct answer_count {
    std::mutex mutex;
    std::condition_variable changed;
    int n = 0;
    void add() {
        {
            std::lock_guard lock{mutex};
            ++n;
        }
        changed.notify_all();
    }
    int finished = 0;  // client loops that ended (the server died or refused them)
    void finish() {
        {
            std::lock_guard lock{mutex};
            ++finished;
        }
        changed.notify_all();
    }
    void wait_for(int target, int clients) {
        std::unique_lock lock{mutex};
        changed.wait(lock, [&] { return n >= target || finished == clients; });
    }
};

struct kill_tally {
    std::map<std::uint64_t, bytes> received;
    int pending = 0;
    int failures = 0;
    int resent_ok = 0;
};

// One client's loop for one server life: first the request the last kill cut off, then new
// ones, until the server dies (or `stop`).
void kill_client_loop(unsigned short port, X509* ca, kill_client& k, int round,
                      std::atomic<bool>& stop, kill_tally& t, answer_count& answers) {
    while (!stop) {
        const bool resend = k.in_flight.has_value();
        if (!resend) {
            k.in_flight =
                make_client(k.key, fmt::format("CN=kill-{}-{}-{},O=lab", k.key, round, k.next++));
            k.in_flight_der = k.in_flight->pkcs_req({ca});
        }
        switch (send_once(port, ca, *k.in_flight, k.in_flight_der, t.received)) {
            case outcome::success:
                t.resent_ok += resend ? 1 : 0;
                k.in_flight.reset();
                answers.add();
                break;
            case outcome::unanswered:
                return;  // keep it: re-sent after the restart
            case outcome::pending:
                ++t.pending;
                k.in_flight.reset();
                return;
            case outcome::failure:
                ++t.failures;
                k.in_flight.reset();
                return;
        }
    }
}

TEST(kill9, eight_clients_thirty_kills_leave_nothing_pending_missing_or_reused) {
    // The fixture keys: one transactionID per client (scep-wire §0.11).
    const std::array<std::string, 8> keys{"client1", "client2",   "ra",        "shadow",
                                          "ca",      "rollover1", "rollover2", "certmonger-client"};
    load_providers(false);
    temp_dir dir;
    write_text(dir.path / "auto.ios",
               "crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto\n"
               " database level complete\n");
    write_text(dir.path / "passphrase", "kill-test-passphrase\n");
    write_text(dir.path / "challenge", "secret\n");
    const auto data = dir.path / "data";

    // Seeded kill moments: after the Nth certificate of a server life, plus a few hundred
    // microseconds so that the kill lands anywhere inside the requests still in flight.
    std::mt19937 rng{20'261'201};
    std::uniform_int_distribution<int> after_answers{1, 12};
    std::uniform_int_distribution<int> extra_us{0, 3000};
    int at_least = 0;
    std::array<kill_client, 8> clients;
    std::array<kill_tally, 8> tallies;
    for (std::size_t i = 0; i < keys.size(); ++i)
        clients[i].key = keys[i];
    x509_ptr ca;
    int kills = 0;
    constexpr int rounds = 30;
    for (int round = 0; round <= rounds; ++round) {
        child_server child{dir.path, "auto.ios"};
        if (!ca) {
            ca = x509_from_der(http_get(child.port(), "/cgi-bin/pkiclient.exe?operation=GetCACert")
                                   .body_bytes())
                     .value();
        }
        std::atomic<bool> stop{false};
        answer_count answers;
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < clients.size(); ++i) {
            threads.emplace_back([&, i] {
                kill_client_loop(child.port(), ca.get(), clients[i], round, stop, tallies[i],
                                 answers);
                answers.finish();
            });
        }
        if (round < rounds) {
            const int target = after_answers(rng);
            at_least += target;
            answers.wait_for(target, static_cast<int>(clients.size()));
            std::this_thread::sleep_for(std::chrono::microseconds{extra_us(rng)});
            child.kill_now();
            ++kills;
            stop = true;
            for (auto& t : threads)
                t.join();
        } else {
            // The last life: every cut-off request is re-sent once and answered, then SIGTERM.
            stop = true;
            for (auto& t : threads)
                t.join();
            for (std::size_t i = 0; i < clients.size(); ++i) {
                if (clients[i].in_flight) {
                    auto& k = clients[i];
                    EXPECT_EQ(send_once(child.port(), ca.get(), *k.in_flight, k.in_flight_der,
                                        tallies[i].received),
                              outcome::success)
                        << keys[i];
                }
            }
            EXPECT_EQ(child.terminate(), 0);
        }
    }

    std::map<std::uint64_t, bytes> all_received;
    int reused = 0, pending = 0, failures = 0, resent_ok = 0;
    for (auto& t : tallies) {
        for (auto& [serial, der] : t.received) {
            auto [it, fresh] = all_received.emplace(serial, der);
            if (!fresh && it->second != der)
                ++reused;  // one serial, two certificates
        }
        pending += t.pending;
        failures += t.failures;
        resent_ok += t.resent_ok;
    }
    std::cerr << kills << " kills; " << all_received.size() << " certificates received, "
              << resent_ok << " cut-off requests answered after a restart\n";
    EXPECT_EQ(kills, rounds);
    EXPECT_EQ(reused, 0);
    EXPECT_EQ(pending, 0) << "a grant auto request was left PENDING";
    EXPECT_EQ(failures, 0);
    EXPECT_GE(all_received.size(), static_cast<std::size_t>(at_least));

    store db{data / "pkisim.db"};
    EXPECT_EQ(db.integrity_check(), "ok");
    for (const auto& r : db.requests())
        EXPECT_NE(r.state, request_state::pending) << "request " << r.id << " " << r.subject;
    for (const auto& [serial, der] : all_received) {
        auto stored = db.certificate(serial);
        ASSERT_TRUE(stored) << "serial " << serial << " was received but is not in the store";
        EXPECT_EQ(stored->der, der) << "serial " << serial;
    }
    const auto certs = db.certificates();
    std::set<std::uint64_t> serials;
    int missing_files = 0;
    for (const auto& c : certs) {
        serials.insert(c.serial);
        if (!c.request_id)
            continue;
        std::ifstream in{data / certificate_file_name(c.serial), std::ios::binary};
        const std::string have{std::istreambuf_iterator<char>{in}, {}};
        if (!in || bytes(have.begin(), have.end()) != c.der)
            ++missing_files;
    }
    EXPECT_EQ(missing_files, 0) << "<serial>.cer missing or different after the restarts";
    EXPECT_EQ(serials.size(), certs.size());
    EXPECT_EQ(serials.size(), db.last_serial());  // contiguous from the CA's 1
    for (const auto& entry : std::filesystem::directory_iterator{data})
        EXPECT_FALSE(entry.path().string().ends_with(".tmp")) << entry.path();
}

}  // namespace
}  // namespace pkisim::scep
