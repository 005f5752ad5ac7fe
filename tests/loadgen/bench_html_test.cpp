// The HTML page of `pkisim bench` in a real browser (headless Chromium): it loads without
// errors and shows the three plots with a line per outcome class. Label "chromium".
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/loadgen/bench.hpp"
#include "server_support.hpp"

namespace pkisim::loadgen {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read(const fs::path& p) {
    std::ifstream in{p};
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(bench_html, loads_in_headless_chromium_with_the_three_plots_and_no_errors) {
    const char* chromium = "/usr/bin/chromium";
    if (!fs::exists(chromium)) {
        GTEST_SKIP() << "no " << chromium;
    }
    scep::testing::test_server s;
    bench_options o;
    o.url = fmt::format("http://127.0.0.1:{}", s.port());
    o.mode = bench_mode::mix;
    o.mix = *parse_mix("GetCACert:3,GetNextCACert:1");  // 2xx and the IOS 404
    o.requests = 200;
    o.duration = 0ns;
    o.warmup = 0ns;
    o.concurrency = 4;
    auto plan = prepare_bench(o);
    ASSERT_TRUE(plan) << plan.error();
    const auto r = run_bench(**plan, o);
    ASSERT_GT(r.outcomes[static_cast<std::size_t>(outcome::http_4xx)], 0u);

    scep::testing::temp_dir dir;
    const auto page = dir.path / "bench.html";
    std::ofstream{page} << bench_html(o, **plan, r);
    const std::string flags =
        " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--enable-logging=stderr --v=0 --user-data-dir=" +
        (dir.path / "profile").string();
    const std::string cmd = std::string{chromium} + flags + " --dump-dom file://" + page.string() +
                            " > " + (dir.path / "dom.html").string() + " 2> " +
                            (dir.path / "log.txt").string();
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    ASSERT_EQ(WEXITSTATUS(rc), 0) << read(dir.path / "log.txt");
    const auto dom = read(dir.path / "dom.html");
    for (const char* id : {"plot-throughput", "plot-latency", "plot-outcomes"}) {
        EXPECT_NE(dom.find(std::string{"id=\""} + id + "\""), std::string::npos) << id;
    }
    EXPECT_NE(dom.find("<polyline"), std::string::npos);
    EXPECT_NE(dom.find(">http_4xx<"), std::string::npos);  // legend of the outcomes plot
    EXPECT_NE(dom.find(">http_2xx<"), std::string::npos);
    const auto log = read(dir.path / "log.txt");
    EXPECT_EQ(log.find("Uncaught"), std::string::npos) << log;
    EXPECT_EQ(log.find("ERROR:CONSOLE"), std::string::npos) << log;
}

}  // namespace
}  // namespace pkisim::loadgen
