// Issue 13 §4: secrets at rest and the files the server reads them from. The CA key's PBKDF2
// work factor (and the migration of keys written with OpenSSL's default), passphrase and
// challenge files that others can read, an empty passphrase that must create nothing, and the
// `database level complete` files a crash left missing.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/key_protection.hpp"
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

TEST(key_protection, a_new_ca_key_uses_pbkdf2_sha256_with_at_least_600000_iterations) {
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
    EXPECT_EQ(migrate_ca_key_encryption(db, wrong.passphrase), 0u);
    EXPECT_THROW((ca_engine{wrong, clock}), startup_error);
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
