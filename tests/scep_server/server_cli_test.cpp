// `pkisim serve` start-up errors: one clear line on stderr and a distinct exit code each
// (cli/serve.cpp): 2 bad config, 3 port in use, 4 wrong passphrase, 5 foreign data folder.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include "pkisim/scep/ca_engine.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;

struct cli_fixture {
    cli_fixture() {
        write("ca.ios", "crypto pki server labca\n issuer-name CN=labca,O=lab\n grant auto\n");
        write("pass", "right\n");
        write("wrong", "wrong\n");
    }
    void write(const std::string& name, const std::string& text) {
        std::ofstream{dir.path / name} << text;
        // Private, as `pkisim serve` requires of passphrase files (issue 13 §4).
        std::filesystem::permissions(dir.path / name, std::filesystem::perms::owner_read |
                                                          std::filesystem::perms::owner_write);
    }
    // Runs `pkisim serve CONFIG --data DIR/data ...` (it must fail at once; `timeout` guards a
    // hang).
    int serve(const std::string& config, const std::string& pass,
              const std::string& listen = "127.0.0.1:0") {
        const auto err = dir.path / "stderr.txt";
        const std::string cmd = fmt::format(
            "timeout 20 {} serve {} --data {} --listen {} --passphrase-file {} >/dev/null 2>{}",
            PKISIM_BINARY, (dir.path / config).string(), (dir.path / "data").string(), listen,
            (dir.path / pass).string(), err.string());
        const int status = std::system(cmd.c_str());
        std::ifstream in{err};
        std::getline(in, last_error);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    // Creates the CA once by starting and stopping a server in-process.
    void create_ca() {
        load_providers(false);
        timers::manual_clock clock{test_epoch()};
        engine_options e;
        e.server.name = "labca";
        e.server.issuer_name = "CN=labca,O=lab";
        e.data_dir = dir.path / "data";
        e.passphrase = "right";
        e.existing_key_pem = private_key_to_pem(fixture_key("shadow"));
        ca_engine engine{e, clock};
    }
    temp_dir dir;
    std::string last_error;
};

TEST(serve_cli, bad_configuration_exits_2_with_file_and_line) {
    cli_fixture f;
    f.write("bad.ios", "crypto pki server labca\n lifetime certificate 99999\n");
    EXPECT_EQ(f.serve("bad.ios", "pass"), 2);
    EXPECT_NE(f.last_error.find("bad.ios:2"), std::string::npos) << f.last_error;
}

TEST(serve_cli, port_in_use_exits_3) {
    cli_fixture f;
    boost::asio::io_context ctx;
    boost::asio::ip::tcp::acceptor taken{ctx, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    const auto port = taken.local_endpoint().port();
    EXPECT_EQ(f.serve("ca.ios", "pass", fmt::format("127.0.0.1:{}", port)), 3);
    EXPECT_NE(f.last_error.find("Address already in use"), std::string::npos) << f.last_error;
    // Nothing was created for a server that could not listen.
    EXPECT_FALSE(std::filesystem::exists(f.dir.path / "data" / "pkisim.db"));
}

TEST(serve_cli, wrong_passphrase_exits_4) {
    cli_fixture f;
    f.create_ca();
    EXPECT_EQ(f.serve("ca.ios", "wrong"), 4);
    EXPECT_NE(f.last_error.find("wrong passphrase"), std::string::npos) << f.last_error;
}

TEST(serve_cli, data_folder_of_another_ca_exits_5) {
    cli_fixture f;
    f.create_ca();
    f.write("other.ios", "crypto pki server labca\n issuer-name CN=other-ca\n");
    EXPECT_EQ(f.serve("other.ios", "pass"), 5);
    EXPECT_NE(f.last_error.find("belongs to CA"), std::string::npos) << f.last_error;
}

}  // namespace
}  // namespace pkisim::scep
