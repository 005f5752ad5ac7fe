// Helpers for the server tests: temporary data folders, a server on 127.0.0.1:0 with a manual
// clock, and a raw HTTP client that returns the exact bytes the server sent.
//
//   test_server s{grant_mode::auto_grant};          // CA created in a temp folder
//   auto r = http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps");
//   EXPECT_EQ(r.status, 200u);
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pkisim/scep/server.hpp"
#include "pkisim/timers/clock.hpp"
#include "support_pki.hpp"

namespace pkisim::scep::testing {

// mkdtemp folder, removed with its contents.
struct temp_dir {
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::filesystem::path path;
};

// `crypto pki server labca`, issuer-name CN=labca,O=lab, the given grant mode.
timers::server_config lab_server_config(timers::grant_mode grant);
// Passphrase "lab-passphrase", static challenge "secret", RSA 2048.
engine_options lab_engine_options(const std::filesystem::path& dir, timers::grant_mode grant);

struct test_server {
    explicit test_server(timers::grant_mode grant = timers::grant_mode::auto_grant,
                         std::optional<engine_options> engine = std::nullopt,
                         std::optional<http_options> http = std::nullopt);
    ~test_server();
    unsigned short port() const { return srv->local_port(); }
    X509* ca() { return srv->engine().ca_certificate(); }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    std::unique_ptr<server> srv;
};

struct raw_response {
    std::string raw;  // every byte received until the server closed
    unsigned status = 0;
    std::string head;  // status line + headers
    std::string body;
    bool closed_without_answer = false;
    bool reset = false;      // the server reset the connection (ECONNRESET)
    bool timed_out = false;  // nothing more arrived within the timeout; we gave up
    std::string header(std::string_view name) const;  // "" when absent
    bytes body_bytes() const { return {body.begin(), body.end()}; }
};
// Sends `request` verbatim, reads until EOF (or timeout).
// half_close: shut down our sending side after the request (an HTTP/1.0 body without
// Content-Length ends there).
raw_response http_raw(unsigned short port, std::string_view request,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds{5000},
                      bool half_close = false);
raw_response http_get(unsigned short port, std::string_view target,
                      std::string_view version = "1.0", std::string_view extra_headers = "");
raw_response http_post(unsigned short port, std::string_view target, const bytes& body,
                       std::string_view extra_headers = "");
// PKIOperation: POST the message, or GET with standard base64 URL-escaped (%2B %2F %3D).
raw_response pki_post(unsigned short port, const bytes& der);
raw_response pki_get(unsigned short port, const bytes& der);

std::string url_escape(std::string_view s);

}  // namespace pkisim::scep::testing
