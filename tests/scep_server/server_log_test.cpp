// Issue 13 §4: the access log. Every field that comes from the client is escaped, so no request
// can end a line or forge one and no raw NUL or 0xFF byte goes in; the file is owner-only.
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
namespace fs = std::filesystem;

std::vector<std::string> lines_of(const fs::path& p) {
    std::ifstream in{p, std::ios::binary};
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

http_options logging_http(const fs::path& log) {
    http_options h;
    h.access_log = log;
    h.limiter.enabled = false;
    return h;
}

TEST(access_log, escape_log_field_leaves_no_control_or_non_ascii_byte) {
    EXPECT_EQ(escape_log_field("GetCACert"), "GetCACert");
    EXPECT_EQ(escape_log_field("a b"), "a\\x20b");
    EXPECT_EQ(escape_log_field("a b", true), "a b");
    EXPECT_EQ(escape_log_field(std::string_view{"x\0y", 3}), "x\\x00y");
    EXPECT_EQ(escape_log_field("\xff\n\r\t\x7f"), "\\xFF\\x0A\\x0D\\x09\\x7F");
    // The escape character itself is escaped, so an escaped field decodes one way only.
    EXPECT_EQ(escape_log_field("\\x0A"), "\\x5Cx0A");
    for (int b = 0; b < 256; ++b) {
        const std::string in(1, static_cast<char>(b));
        for (const bool spaces : {false, true}) {
            for (const char c : escape_log_field(in, spaces)) {
                const auto u = static_cast<unsigned char>(c);
                EXPECT_TRUE(u > 0x20 || (spaces && u == 0x20)) << b;
                EXPECT_LT(u, 0x7F) << b;
            }
        }
    }
}

TEST(access_log, a_request_cannot_forge_a_line_or_write_raw_nul_and_ff_bytes) {
    temp_dir logs;
    const auto log = logs.path / "access.log";
    test_server s{timers::grant_mode::auto_grant, std::nullopt, logging_http(log)};
    const std::vector<std::string> targets{
        // The forged line, in the operation parameter.
        "/cgi-bin/pkiclient.exe?operation=X%0A1999-01-01T00:00:00.000Z%20203.0.113.9:4444%20POST"
        "%20PKIOperation%20200%201ms%20PKCSReq%20SUCCESS%20serial%2099",
        "/cgi-bin/pkiclient.exe?operation=%00%FF%0D%0Aforged",
        "/cgi-bin/pkiclient.exe?operation=GetCACert%0D%0A1999-01-01T00:00:00.000Z",
        // Raw bytes in the path and an unknown method: 404 / 405 lines.
        "/x%0Ay/pkiclient.exe?operation=GetCACaps",
    };
    for (const auto& t : targets)
        EXPECT_LT(http_get(s.port(), t).status, 500u) << t;
    EXPECT_EQ(http_raw(s.port(), "FOO\x01 /cgi-bin/pkiclient.exe HTTP/1.0\r\n\r\n").status, 400u);
    EXPECT_EQ(http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACert").status, 200u);
    s.srv->stop();

    const auto lines = lines_of(log);
    ASSERT_EQ(lines.size(), targets.size() + 2);  // one line per request, no more
    for (const auto& l : lines) {
        EXPECT_FALSE(l.starts_with("1999-")) << l;
        for (const char c : l) {
            const auto u = static_cast<unsigned char>(c);
            EXPECT_TRUE(u >= 0x20 && u < 0x7F) << "raw byte " << int{u} << " in: " << l;
        }
    }
    EXPECT_NE(lines[0].find(" X\\x0A1999-01-01T00:00:00.000Z\\x20203.0.113.9:4444\\x20POST"),
              std::string::npos)
        << lines[0];
    EXPECT_NE(lines[1].find(" \\x00\\xFF\\x0D\\x0Aforged "), std::string::npos) << lines[1];
    // Every line has the same shape: time, peer, method, operation, status, duration, detail.
    for (const auto& l : lines) {
        std::istringstream in{l};
        std::string time, peer, method, op, status, ms;
        in >> time >> peer >> method >> op >> status >> ms;
        EXPECT_TRUE(time.starts_with("20") && time.ends_with("Z")) << l;
        EXPECT_TRUE(peer.starts_with("127.0.0.1:")) << l;
        EXPECT_EQ(status.size(), 3u) << l;
        EXPECT_TRUE(ms.ends_with("ms")) << l;
    }
}

TEST(access_log, is_created_owner_only_and_an_existing_open_one_is_narrowed) {
    temp_dir logs;
    const auto log = logs.path / "access.log";
    {
        test_server s{timers::grant_mode::auto_grant, std::nullopt, logging_http(log)};
        EXPECT_EQ(http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps").status, 200u);
    }
    struct stat st {};
    ASSERT_EQ(::stat(log.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    fs::permissions(log, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                             fs::perms::others_read);
    {
        test_server s{timers::grant_mode::auto_grant, std::nullopt, logging_http(log)};
        EXPECT_EQ(http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps").status, 200u);
    }
    ASSERT_EQ(::stat(log.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(lines_of(log).size(), 2u);  // appended, not truncated
}

}  // namespace
}  // namespace pkisim::scep
