// Issue 13 §4: secrets at rest and the files the server reads them from. The CA key's PBKDF2
// work factor (and the migration of keys written with OpenSSL's default), passphrase and
// challenge files that others can read, an empty passphrase that must create nothing, and the
// `database level complete` files a crash left missing.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/key_protection.hpp"
#include "pkisim/scep/ra_engine.hpp"
#include "pkisim/scep/store.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
    std::ifstream in{p, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, {}};
}

void write_file(const fs::path& p, const std::string& text, fs::perms mode) {
    std::ofstream{p} << text;
    fs::permissions(p, mode);
}

// What OpenSSL writes by default (PEM_write_bio_PKCS8PrivateKey: PBKDF2 at 2,048 iterations),
// i.e. what data folders made before issue 13 hold.
std::string openssl_default_pem(EVP_PKEY* key, std::string_view pass) {
    bio_ptr bio{BIO_new(BIO_s_mem())};
    EXPECT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), pass.data(),
                                            static_cast<int>(pass.size()), nullptr, nullptr),
              1);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

// Sets (or, with nullopt, unsets) an environment variable for its lifetime, then restores it.
// The work-factor tests clear PKISIM_TEST_KDF_ITERATIONS (the ctest presets set it) with it.
struct scoped_env {
    scoped_env(std::string n, std::optional<std::string> value) : name(std::move(n)) {
        if (const char* v = std::getenv(name.c_str()))
            old = v;
        if (value)
            ::setenv(name.c_str(), value->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
    ~scoped_env() {
        if (old)
            ::setenv(name.c_str(), old->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    std::string name;
    std::optional<std::string> old;
};

// `pkisim serve` as a child process: `env` is prepended to the command line (e.g. "env
// PKISIM_TEST_KDF_ITERATIONS=4096" or "env -u PKISIM_TEST_KDF_ITERATIONS"), stderr goes to
// `err`. start() waits (bounded) for the "listening on" line and returns it ("" if it exited).
struct serve_child {
    pid_t pid = -1;
    int out = -1;
    std::string start(const std::string& env, const std::string& args, const fs::path& err) {
        int p[2];
        if (::pipe(p) != 0)
            return "";
        const auto cmd =
            fmt::format("exec {} {} serve {} 2>{}", env, PKISIM_BINARY, args, err.string());
        pid = ::fork();
        if (pid == 0) {
            ::dup2(p[1], STDOUT_FILENO);
            ::close(p[0]);
            ::execl("/bin/bash", "bash", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(p[1]);
        out = p[0];
        std::string line;
        pollfd pf{out, POLLIN, 0};
        while (line.find('\n') == std::string::npos && ::poll(&pf, 1, 30'000) > 0) {
            char b[512];
            const auto n = ::read(out, b, sizeof b);
            if (n <= 0)
                break;
            line.append(b, static_cast<std::size_t>(n));
        }
        const auto at = line.find("listening on http://127.0.0.1:");
        if (at == std::string::npos)
            return "";
        port_ = static_cast<unsigned short>(std::stoi(line.substr(at + 30)));
        return line;
    }
    unsigned short port() const { return port_; }
    unsigned short port_ = 0;
    int stop() {
        if (pid <= 0)
            return -1;
        ::kill(pid, SIGTERM);
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
        ::close(out);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    ~serve_child() { stop(); }
};

TEST(key_protection, a_new_ca_key_uses_pbkdf2_sha256_with_at_least_600000_iterations) {
    // The production work factor: without the test suite's override.
    scoped_env production{test_kdf_iterations_env, std::nullopt};
    load_providers(false);
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    auto o = lab_engine_options(dir.path, timers::grant_mode::auto_grant);
    { ca_engine e{o, clock}; }
    store db{o.data_dir / "pkisim.db"};
    const auto gens = db.ca_generations();
    ASSERT_EQ(gens.size(), 1u);
    EXPECT_GE(pbkdf2_iterations(gens[0].key_pem).value_or(0), 600'000);
    // The real openssl tool reads it with the passphrase and names the scheme.
    write_file(dir.path / "key.pem", gens[0].key_pem,
               fs::perms::owner_read | fs::perms::owner_write);
    write_file(dir.path / "pass", o.passphrase + "\n",
               fs::perms::owner_read | fs::perms::owner_write);
    const auto cmd = fmt::format(
        "openssl asn1parse -in {} > {} 2>&1 && openssl pkey -in {} -passin file:{} -noout",
        (dir.path / "key.pem").string(), (dir.path / "asn1.txt").string(),
        (dir.path / "key.pem").string(), (dir.path / "pass").string());
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    const auto asn1 = slurp(dir.path / "asn1.txt");
    EXPECT_NE(asn1.find("PBES2"), std::string::npos) << asn1;
    EXPECT_NE(asn1.find("PBKDF2"), std::string::npos) << asn1;
    EXPECT_NE(asn1.find("hmacWithSHA256"), std::string::npos) << asn1;
    EXPECT_NE(asn1.find("aes-256-cbc"), std::string::npos) << asn1;
}

TEST(key_protection, iteration_count_is_read_from_the_pem_and_garbage_has_none) {
    load_providers(false);
    EVP_PKEY* key = fixture_key("client1");
    EXPECT_EQ(pbkdf2_iterations(openssl_default_pem(key, "pw")), 2048);
    EXPECT_EQ(pbkdf2_iterations(encrypt_private_key_pem_with(key, "pw", 12'345)), 12'345);
    EXPECT_FALSE(pbkdf2_iterations(private_key_to_pem(key)));  // not encrypted
    EXPECT_FALSE(pbkdf2_iterations("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"));
    EXPECT_FALSE(pbkdf2_iterations(""));
}

TEST(key_protection, keys_written_with_the_old_work_factor_are_migrated_at_start) {
    load_providers(false);
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    auto o = lab_engine_options(dir.path, timers::grant_mode::auto_grant);
    std::string fingerprint;
    {
        ca_engine e{o, clock};
        fingerprint = sha256_fingerprint(e.ca_certificate());
    }
    {
        // Rewrite the stored key as a pre-issue-13 folder has it.
        store db{o.data_dir / "pkisim.db"};
        const auto g = db.ca_generations().at(0);
        auto key = decrypt_private_key_pem(g.key_pem, o.passphrase).value();
        db.set_ca_key_pem(g.id, openssl_default_pem(key.get(), o.passphrase));
        EXPECT_EQ(pbkdf2_iterations(db.ca_generations().at(0).key_pem), 2048);
    }
    // The migrating start runs at the production work factor.
    scoped_env production{test_kdf_iterations_env, std::nullopt};
    auto c = make_client();
    {
        ca_engine e{o, clock};
        EXPECT_EQ(sha256_fingerprint(e.ca_certificate()), fingerprint);
        // The migrated key still signs: an enrollment succeeds.
        EXPECT_EQ(e.pki_operation(c.pkcs_req({e.ca_certificate()})).status, 200u);
    }
    store db{o.data_dir / "pkisim.db"};
    const auto g = db.ca_generations().at(0);
    EXPECT_EQ(pbkdf2_iterations(g.key_pem), ca_key_pbkdf2_iterations);
    auto again = decrypt_private_key_pem(g.key_pem, o.passphrase);
    ASSERT_TRUE(again);
    EXPECT_EQ(private_key_to_pem(again->get()), private_key_to_pem(fixture_key("shadow")));
    // A wrong passphrase migrates nothing and is still refused.
    auto wrong = o;
    wrong.passphrase = "not-it";
    EXPECT_EQ(migrate_key_encryption(db, wrong.passphrase), 0u);
    EXPECT_THROW((ca_engine{wrong, clock}), startup_error);
}

TEST(key_protection, the_test_work_factor_is_bounded_and_keys_written_with_it_are_migrated_up) {
    load_providers(false);
    EVP_PKEY* key = fixture_key("client1");
    {
        scoped_env unset{test_kdf_iterations_env, std::nullopt};
        EXPECT_EQ(key_pbkdf2_iterations(), ca_key_pbkdf2_iterations);
    }
    // Out of range or not a number: refused (a typo must not silently weaken keys), including
    // OpenSSL's default and anything below twice it.
    for (const char* bad : {"2048", "1", "4095", "0", "-4096", "600001", "4096x", "abc", " 4096"}) {
        scoped_env env{test_kdf_iterations_env, std::string{bad}};
        try {
            (void)key_pbkdf2_iterations();
            ADD_FAILURE() << bad << " accepted";
        } catch (const startup_error& e) {
            EXPECT_EQ(e.status(), exit_status::config) << bad;
            EXPECT_NE(std::string{e.what()}.find("4096 to 600000"), std::string::npos) << e.what();
        }
    }
    std::string test_pem;
    {
        scoped_env env{test_kdf_iterations_env, std::string{"5000"}};
        EXPECT_EQ(key_pbkdf2_iterations(), 5000);
        EXPECT_EQ(pbkdf2_iterations(encrypt_private_key_pem(key, "pw")), 5000);
        // Even with the override, a key at OpenSSL's default is still below the bar.
        const auto up = reencrypt_if_weak(openssl_default_pem(key, "pw"), "pw");
        ASSERT_TRUE(up);
        EXPECT_EQ(pbkdf2_iterations(*up), 5000);
        test_pem = *up;
        EXPECT_EQ(private_key_to_pem(decrypt_private_key_pem(test_pem, "pw").value().get()),
                  private_key_to_pem(key));
        EXPECT_FALSE(reencrypt_if_weak(test_pem, "pw"));  // at the bar: left alone
    }
    // A key written under the override is migrated to the real factor by a normal start.
    scoped_env unset{test_kdf_iterations_env, std::nullopt};
    const auto up = reencrypt_if_weak(test_pem, "pw");
    ASSERT_TRUE(up);
    EXPECT_EQ(pbkdf2_iterations(*up), ca_key_pbkdf2_iterations);
    EXPECT_FALSE(reencrypt_if_weak(*up, "wrong"));
}

// `crypto pki server labra` in `mode ra` in front of the CA at `port` (same NAME trustpoint).
void write_ra_config(const fs::path& dir, unsigned short port) {
    std::ofstream{dir / "ra.ios"} << fmt::format(
        "crypto pki trustpoint labra\n enrollment url http://127.0.0.1:{}\n!\n"
        "crypto pki server labra\n mode ra\n",
        port);
    write_file(dir / "ra-pass", "ra-passphrase\n", fs::perms::owner_read | fs::perms::owner_write);
    write_file(dir / "ra-challenge", "ra-secret\n", fs::perms::owner_read);
    write_file(dir / "upstream", "secret\n", fs::perms::owner_read);  // lab CA's challenge
}

// The RA's clock starts where the in-process CA's manual clock stands (test_epoch()).
std::string ra_serve_args(const fs::path& dir) {
    return fmt::format(
        "{} --data {} --listen 127.0.0.1:0 --passphrase-file {} --challenge-file {} "
        "--upstream-challenge-file {} --clock-start 2030-01-01T00:00:10Z",
        (dir / "ra.ios").string(), (dir / "ra-data").string(), (dir / "ra-pass").string(),
        (dir / "ra-challenge").string(), (dir / "upstream").string());
}

TEST(key_protection, ra_keys_written_with_the_old_work_factor_are_migrated_by_pkisim_serve) {
    test_server ca{timers::grant_mode::auto_grant};
    temp_dir dir;
    write_ra_config(dir.path, ca.port());
    const auto db_path = dir.path / "ra-data" / "pkisim.db";
    {
        // First start under the test suite's work factor: the binary says so on stderr.
        serve_child ra;
        const auto line = ra.start(fmt::format("env {}=4096", test_kdf_iterations_env),
                                   ra_serve_args(dir.path), dir.path / "err1");
        ASSERT_NE(line, "") << slurp(dir.path / "err1");
        EXPECT_EQ(http_get(ra.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps").status, 200u);
        EXPECT_EQ(ra.stop(), 0);
        EXPECT_NE(slurp(dir.path / "err1").find("WARNING: PKISIM_TEST_KDF_ITERATIONS=4096"),
                  std::string::npos)
            << slurp(dir.path / "err1");
    }
    std::string ra_key_pem;
    {
        // Make the folder what a pre-issue-13 RA wrote: its key and a rollover key at 2,048.
        store db{db_path};
        ASSERT_EQ(pbkdf2_iterations(db.meta(ra_key_meta).value()), 4096);
        ASSERT_FALSE(db.meta("ra_cert").value_or("").empty()) << "the RA did not enroll";
        auto key = decrypt_private_key_pem(db.meta(ra_key_meta).value(), "ra-passphrase").value();
        ra_key_pem = private_key_to_pem(key.get());
        db.set_meta(ra_key_meta, openssl_default_pem(key.get(), "ra-passphrase"));
        db.set_meta(ra_shadow_key_meta,
                    openssl_default_pem(fixture_key("client2"), "ra-passphrase"));
    }
    {
        serve_child ra;
        const auto line = ra.start(fmt::format("env -u {}", test_kdf_iterations_env),
                                   ra_serve_args(dir.path), dir.path / "err2");
        ASSERT_NE(line, "") << slurp(dir.path / "err2");
        // The migrated key still works: the RA serves CA + RA certificate.
        const auto r = http_get(ra.port(), "/cgi-bin/pkiclient.exe?operation=GetCACert");
        EXPECT_EQ(r.status, 200u);
        EXPECT_EQ(r.header("Content-Type"), "application/x-x509-ca-ra-cert");
        EXPECT_EQ(ra.stop(), 0);
        EXPECT_EQ(slurp(dir.path / "err2").find("WARNING"), std::string::npos)
            << slurp(dir.path / "err2");
    }
    store db{db_path};
    const auto ra_pem = db.meta(ra_key_meta).value();
    const auto shadow_pem = db.meta(ra_shadow_key_meta).value();
    EXPECT_EQ(pbkdf2_iterations(ra_pem), ca_key_pbkdf2_iterations);
    EXPECT_EQ(pbkdf2_iterations(shadow_pem), ca_key_pbkdf2_iterations);
    auto ra_key = decrypt_private_key_pem(ra_pem, "ra-passphrase");
    ASSERT_TRUE(ra_key);
    EXPECT_EQ(private_key_to_pem(ra_key->get()), ra_key_pem);
    auto cert = x509_from_pem(db.meta("ra_cert").value()).value();
    EXPECT_EQ(X509_check_private_key(cert.get(), ra_key->get()), 1);
    // The rollover key is not decrypted here (600k PBKDF2 is ~8 s under ASan): the RA above
    // loaded it (load_shadow refuses a key it cannot open) after the migration.
}

TEST(secrets, ra_mode_refuses_an_empty_passphrase_before_anything_is_created) {
    temp_dir dir;
    write_ra_config(dir.path, 9);  // never contacted
    write_file(dir.path / "ra-pass", "\n", fs::perms::owner_read | fs::perms::owner_write);
    const auto cmd = fmt::format("timeout 20 {} serve {} >/dev/null 2>{}", PKISIM_BINARY,
                                 ra_serve_args(dir.path), (dir.path / "err").string());
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2);
    EXPECT_NE(slurp(dir.path / "err").find("an empty passphrase cannot protect the RA key"),
              std::string::npos)
        << slurp(dir.path / "err");
    EXPECT_FALSE(fs::exists(dir.path / "ra-data"));
    // In process too (make_service picks the RA engine).
    timers::manual_clock clock{test_epoch()};
    engine_options o;
    o.server.name = "labra";
    o.server.mode_ra = true;
    o.data_dir = dir.path / "ra-data";
    timers::trustpoint_config tp;
    tp.name = "labra";
    tp.enrollment_url = "http://127.0.0.1:9";
    o.ra_trustpoint = tp;
    try {
        auto svc = make_service(o, clock);
        ADD_FAILURE() << "an empty RA passphrase was accepted";
    } catch (const startup_error& e) {
        EXPECT_EQ(e.status(), exit_status::config);
    }
    EXPECT_FALSE(fs::exists(o.data_dir));
}

TEST(secrets, an_empty_passphrase_is_refused_before_anything_is_created) {
    load_providers(false);
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    auto o = lab_engine_options(dir.path, timers::grant_mode::auto_grant);
    o.passphrase.clear();
    try {
        ca_engine e{o, clock};
        FAIL() << "an empty passphrase was accepted";
    } catch (const startup_error& e) {
        EXPECT_EQ(e.status(), exit_status::config);
        EXPECT_NE(std::string{e.what()}.find("empty passphrase"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(o.data_dir / "pkisim.db"));
    EXPECT_FALSE(fs::exists(o.data_dir));
}

TEST(secrets, passphrase_files_others_can_read_are_refused_unless_insisted_on) {
    temp_dir dir;
    const auto p = dir.path / "pass";
    for (const auto mode :
         {fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read,
          fs::perms::owner_read | fs::perms::others_read,
          fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_write}) {
        write_file(p, "pw\n", mode);
        try {
            read_secret_file(p, false);
            ADD_FAILURE() << "mode " << static_cast<int>(mode) << " accepted";
        } catch (const startup_error& e) {
            EXPECT_EQ(e.status(), exit_status::config);
            const std::string what = e.what();
            EXPECT_NE(what.find("chmod 600 " + p.string()), std::string::npos) << what;
            EXPECT_NE(what.find(fmt::format("mode {:04o}", static_cast<unsigned>(mode))),
                      std::string::npos)
                << what;
        }
        std::string warning;
        EXPECT_EQ(read_secret_file(p, true, &warning), "pw");
        EXPECT_NE(warning.find("--allow-shared-secret-files"), std::string::npos);
    }
    write_file(p, "secret \r\nsecond line\n", fs::perms::owner_read);
    std::string warning;
    EXPECT_EQ(read_secret_file(p, false, &warning), "secret ");
    EXPECT_TRUE(warning.empty());
    EXPECT_THROW(read_secret_file(dir.path / "missing", true), startup_error);
}

TEST(secrets, serve_refuses_a_group_readable_passphrase_file_and_creates_nothing) {
    temp_dir dir;
    std::ofstream{dir.path / "ca.ios"} << "crypto pki server labca\n issuer-name CN=labca,O=lab\n";
    write_file(dir.path / "pass", "a passphrase\n",
               fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    const auto run = [&](const std::string& extra) {
        const auto cmd = fmt::format(
            "timeout 20 {} serve {} --data {} --listen 127.0.0.1:0 --passphrase-file {} {} "
            ">/dev/null 2>{}",
            PKISIM_BINARY, (dir.path / "ca.ios").string(), (dir.path / "data").string(),
            (dir.path / "pass").string(), extra, (dir.path / "err").string());
        const int status = std::system(cmd.c_str());
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    };
    EXPECT_EQ(run(""), 2);
    EXPECT_NE(slurp(dir.path / "err").find("chmod 600"), std::string::npos)
        << slurp(dir.path / "err");
    EXPECT_FALSE(fs::exists(dir.path / "data" / "pkisim.db"));
    // The same with an empty (but private) passphrase file: refused, nothing created.
    write_file(dir.path / "pass", "\n", fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(run(""), 2);
    EXPECT_NE(slurp(dir.path / "err").find("empty passphrase"), std::string::npos)
        << slurp(dir.path / "err");
    EXPECT_FALSE(fs::exists(dir.path / "data"));
}

TEST(crash_repair, missing_and_stale_database_files_are_repaired_at_start) {
    load_providers(false);
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    auto o = lab_engine_options(dir.path, timers::grant_mode::auto_grant);
    o.server.db_level = timers::database_level::complete;
    std::vector<bytes> issued;
    {
        ca_engine e{o, clock};
        for (const auto* key : {"client1", "client2", "ra"}) {
            auto c = make_client(key, fmt::format("CN={},O=lab", key));
            ASSERT_EQ(e.pki_operation(c.pkcs_req({e.ca_certificate()})).status, 200u);
        }
    }
    const auto data = o.data_dir;
    ASSERT_TRUE(fs::exists(data / "2.cer"));
    // What kill -9 leaves: a file never written (3), one cut short (4), a temporary, and the file
    // of a serial whose transaction was rolled back (5 was never committed).
    fs::remove(data / "3.cer");
    const auto four = slurp(data / "4.cer");
    write_file(data / "4.cer", four.substr(0, 10), fs::perms::owner_read | fs::perms::owner_write);
    write_file(data / "2.cer.tmp", "partial", fs::perms::owner_read | fs::perms::owner_write);
    write_file(data / "5.cer", "rolled back", fs::perms::owner_read | fs::perms::owner_write);
    {
        store db{data / "pkisim.db"};
        EXPECT_EQ(db.repair_certificate_files(data), 2u);
        EXPECT_EQ(db.repair_certificate_files(data), 0u);  // idempotent
        fs::remove(data / "3.cer");
    }
    { ca_engine e{o, clock}; }  // the engine repairs at start
    store db{data / "pkisim.db"};
    for (std::uint64_t s = 2; s <= 4; ++s) {
        const auto have = slurp(data / certificate_file_name(s));
        EXPECT_EQ(bytes(have.begin(), have.end()), db.certificate(s)->der) << s;
        struct stat st {};
        ASSERT_EQ(::stat((data / certificate_file_name(s)).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
    }
    EXPECT_FALSE(fs::exists(data / "2.cer.tmp"));
    EXPECT_FALSE(fs::exists(data / "5.cer"));
    EXPECT_FALSE(fs::exists(data / "1.cer"));  // the CA certificate is ca.pem, as before
    EXPECT_EQ(db.integrity_check(), "ok");
}

}  // namespace
}  // namespace pkisim::scep
