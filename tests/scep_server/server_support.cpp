#include "server_support.hpp"

#include <stdlib.h>

#include <fmt/format.h>
#include <boost/asio.hpp>

namespace pkisim::scep::testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;

temp_dir::temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pkisim-server-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        throw std::runtime_error("mkdtemp failed");
    path = tmpl;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

timers::server_config lab_server_config(timers::grant_mode grant) {
    timers::server_config s;
    s.name = "labca";
    s.issuer_name = "CN=labca,O=lab";
    s.grant = grant;
    return s;
}

engine_options lab_engine_options(const std::filesystem::path& dir, timers::grant_mode grant) {
    engine_options o;
    o.server = lab_server_config(grant);
    o.data_dir = dir / "data";
    o.passphrase = "lab-passphrase";
    o.challenge = "secret";
    // A fixture key instead of RSA key generation in every test. Not "ca": tests use make_ca()
    // (key "ca") as a foreign CA.
    o.existing_key_pem = private_key_to_pem(fixture_key("shadow"));
    return o;
}

test_server::test_server(timers::grant_mode grant, std::optional<engine_options> engine,
                         std::optional<http_options> http) {
    load_providers(engine && engine->legacy_crypto);
    engine_options e = engine ? std::move(*engine) : lab_engine_options(dir.path, grant);
    if (engine)
        e.data_dir = dir.path / "data";
    http_options h = http ? std::move(*http) : http_options{};
    h.listen_address = "127.0.0.1";
    h.port = 0;
    if (!http) {
        h.quiet = true;
        h.limiter.enabled = false;
    }
    srv = std::make_unique<server>(std::move(e), std::move(h), clock);
    srv->start();
}

test_server::~test_server() {
    srv->stop();
}

std::string raw_response::header(std::string_view name) const {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
        const auto end = head.find("\r\n", pos + 2);
        const auto line = head.substr(pos + 2, end - pos - 2);
        const auto colon = line.find(':');
        if (colon != std::string::npos && line.size() >= name.size() &&
            strncasecmp(line.c_str(), std::string{name}.c_str(), colon) == 0 &&
            colon == name.size()) {
            auto v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ')
                v.erase(0, 1);
            return v;
        }
        pos = end;
    }
    return "";
}

raw_response http_raw(unsigned short port, std::string_view request,
                      std::chrono::milliseconds timeout, bool half_close) {
    net::io_context ctx{1};
    tcp::socket s{ctx};
    s.connect({net::ip::make_address("127.0.0.1"), port});
    boost::system::error_code write_error;
    net::write(s, net::buffer(request), write_error);  // the server may refuse before the end
    if (half_close)
        s.shutdown(tcp::socket::shutdown_send, write_error);
    raw_response r;
    std::array<char, 65536> buf{};
    net::steady_timer timer{ctx};
    bool timed_out = false;
    timer.expires_after(timeout);
    timer.async_wait([&](boost::system::error_code ec) {
        if (!ec) {
            timed_out = true;
            boost::system::error_code ignored;
            s.close(ignored);
        }
    });
    std::function<void()> read_more = [&] {
        s.async_read_some(net::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
            r.raw.append(buf.data(), n);
            if (ec) {
                r.reset = ec == net::error::connection_reset;
                timer.cancel();
                return;
            }
            read_more();
        });
    };
    read_more();
    ctx.run();
    r.timed_out = timed_out;
    const auto sep = r.raw.find("\r\n\r\n");
    if (r.raw.empty()) {
        r.closed_without_answer = true;
        return r;
    }
    r.head = r.raw.substr(0, sep == std::string::npos ? r.raw.size() : sep + 2);
    r.body = sep == std::string::npos ? std::string{} : r.raw.substr(sep + 4);
    if (r.raw.size() > 12)
        r.status = static_cast<unsigned>(std::stoul(r.raw.substr(9, 3)));
    return r;
}

raw_response http_get(unsigned short port, std::string_view target, std::string_view version,
                      std::string_view extra_headers) {
    return http_raw(port,
                    fmt::format("GET {} HTTP/{}\r\nHost: 127.0.0.1\r\n{}{}\r\n", target, version,
                                version == "1.1" ? "Connection: close\r\n" : "", extra_headers));
}

raw_response http_post(unsigned short port, std::string_view target, const bytes& body,
                       std::string_view extra_headers) {
    std::string req = fmt::format(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Length: {}\r\n{}\r\n",
        target, body.size(), extra_headers);
    req.append(body.begin(), body.end());
    return http_raw(port, req);
}

raw_response pki_post(unsigned short port, const bytes& der) {
    return http_post(port, "/cgi-bin/pkiclient.exe?operation=PKIOperation", der);
}

raw_response pki_get(unsigned short port, const bytes& der) {
    return http_get(port, certmonger_get_target(der));
}

std::string url_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') {
            out += c;
        } else {
            out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
        }
    }
    return out;
}

}  // namespace pkisim::scep::testing
