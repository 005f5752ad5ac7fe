// scep_client against a tiny scripted HTTP server in the test (127.0.0.1:0): IOS 404, CA+RA
// bundle, garbage, slow server, closed port, deaf listener, and a SCEP responder built with the
// codec (PENDING -> CertPoll -> SUCCESS, FAILURE, GetNextCACert 200).
#include "pkisim/scep/client.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/server.hpp"
#include "support_pki.hpp"

namespace {

using namespace pkisim::scep;
using namespace pkisim::scep::testing;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

struct http_request {
    std::string head;  // request line + headers
    std::string body;
    std::string request_line() const { return head.substr(0, head.find("\r\n")); }
    std::string header(std::string_view name) const {
        auto p = head.find(std::string{"\r\n"} + std::string{name} + ":");
        if (p == std::string::npos)
            return {};
        p += name.size() + 3;
        auto e = head.find("\r\n", p);
        auto v = head.substr(p, e - p);
        while (!v.empty() && v.front() == ' ')
            v.erase(0, 1);
        return v;
    }
    std::string target() const {
        auto l = request_line();
        auto a = l.find(' ');
        auto b = l.rfind(' ');
        return l.substr(a + 1, b - a - 1);
    }
    std::string param(std::string_view name) const {
        auto t = target();
        auto q = t.find('?');
        std::string_view rest = std::string_view{t}.substr(q + 1);
        while (!rest.empty()) {
            auto amp = rest.find('&');
            auto kv = rest.substr(0, amp);
            auto eq = kv.find('=');
            if (kv.substr(0, eq) == name)
                return std::string{kv.substr(eq + 1)};
            if (amp == std::string_view::npos)
                break;
            rest.remove_prefix(amp + 1);
        }
        return {};
    }
};

// Empty optional = hang: keep the connection open without answering until the peer closes.
using handler = std::function<std::optional<std::string>(const http_request&)>;

std::string response(unsigned status, std::string_view reason, std::string_view content_type,
                     std::string_view body) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string{reason} + "\r\n";
    if (!content_type.empty())
        r += "Content-Type: " + std::string{content_type} + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    r += body;
    return r;
}
std::string ok(std::string_view content_type, const bytes& body) {
    return response(200, "OK", content_type, std::string{body.begin(), body.end()});
}

// One thread, one connection at a time; every request is recorded.
class scripted_server {
  public:
    explicit scripted_server(handler h) : handler_(std::move(h)) {
        acceptor_.open(tcp::v4());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] { run(); });
    }
    ~scripted_server() {
        stop_ = true;
        boost::system::error_code ec;
        // Wake accept() with a connection of our own.
        tcp::socket s{ioc_};
        s.connect({net::ip::make_address("127.0.0.1"), port_}, ec);
        s.close(ec);
        thread_.join();
    }
    std::string url(std::string_view path = "") const {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string{path};
    }
    std::vector<http_request> requests() {
        std::lock_guard lock{mutex_};
        return requests_;
    }

  private:
    void run() {
        while (!stop_) {
            boost::system::error_code ec;
            tcp::socket s{ioc_};
            acceptor_.accept(s, ec);
            if (ec || stop_)
                break;
            net::streambuf buf;
            auto n = net::read_until(s, buf, "\r\n\r\n", ec);
            if (ec)
                continue;
            std::string data{net::buffers_begin(buf.data()), net::buffers_end(buf.data())};
            http_request r;
            r.head = data.substr(0, n);
            r.body = data.substr(n);
            std::size_t length = 0;
            if (auto cl = r.header("Content-Length"); !cl.empty())
                length = std::stoul(cl);
            while (r.body.size() < length) {
                char chunk[4096];
                auto got = s.read_some(net::buffer(chunk), ec);
                if (ec)
                    break;
                r.body.append(chunk, got);
            }
            {
                std::lock_guard lock{mutex_};
                requests_.push_back(r);
            }
            auto answer = handler_(r);
            if (answer) {
                net::write(s, net::buffer(*answer), ec);
                s.shutdown(tcp::socket::shutdown_send, ec);
            }
            // Wait for the client to close (a hang ends when the client gives up), 5 s at most.
            s.non_blocking(false);
            struct timeval tv {
                5, 0
            };
            ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char c;
            while (s.read_some(net::buffer(&c, 1), ec) > 0 && !ec) {
            }
        }
    }

    handler handler_;
    net::io_context ioc_;
    tcp::acceptor acceptor_{ioc_};
    unsigned short port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<http_request> requests_;
    std::thread thread_;
};

client_options fast(client_options o) {
    o.connect_timeout = milliseconds{2000};
    o.read_timeout = milliseconds{2000};
    o.now = [] { return test_epoch(); };
    return o;
}
client_options fast_url(std::string url) {
    client_options o;
    o.url = std::move(url);
    return fast(std::move(o));
}

// The exact bytes IOS CS sends when there is no rollover certificate (issue 3 §2).
const std::string ios_404 =
    "HTTP/1.1 404 Not Found\r\nDate: Fri, 01 Jan 2030 00:00:00 GMT\r\nServer: cisco-IOS\r\n"
    "Accept-Ranges: none\r\n\r\n";

TEST(scep_client, url_without_path_gets_cgi_bin_and_ios_appends_pkiclient_exe) {
    EXPECT_EQ(scep_client{fast_url("http://127.0.0.1:1")}.target("GetCACert", "TP"),
              "/cgi-bin/pkiclient.exe?operation=GetCACert&message=TP");
    EXPECT_EQ(scep_client{fast_url("http://127.0.0.1:1/scep/myscep")}.target("GetCACaps", ""),
              "/scep/myscep/pkiclient.exe?operation=GetCACaps");
    EXPECT_EQ(scep_client{fast_url("http://h:1/cgi-bin/pkiclient.exe")}.target("GetCACaps", ""),
              "/cgi-bin/pkiclient.exe?operation=GetCACaps");
    auto exact = fast_url("http://h:1/scep");
    exact.exact_path = true;
    EXPECT_EQ(scep_client{exact}.target("GetCACaps", ""), "/scep?operation=GetCACaps");
    EXPECT_THROW(scep_client{fast_url("https://h/")}, std::invalid_argument);
    EXPECT_THROW(scep_client{fast_url("http://h:port/")}, std::invalid_argument);
}

TEST(scep_client, ios_get_encoding_escapes_and_breaks_lines_every_64_characters) {
    bytes der(100, 0xfb);  // base64 of 0xfb... is "+/v7+/v7..." : every character needs care
    auto plain = encode_get_message(der, false);
    EXPECT_EQ(plain.find("%0A"), std::string::npos);
    EXPECT_EQ(plain.find('+'), std::string::npos);
    EXPECT_EQ(plain.find('/'), std::string::npos);
    auto ios = encode_get_message(der, true);
    auto decoded = percent_decode(ios);
    // 136 base64 characters -> lines of 64, 64, 8, each ended by a line feed.
    ASSERT_EQ(decoded.size(), 136u + 3u);
    EXPECT_EQ(decoded[64], '\n');
    EXPECT_EQ(decoded[129], '\n');
    EXPECT_EQ(decoded.back(), '\n');
    EXPECT_EQ(lenient_base64_decode(decoded).value(), der);
}

TEST(scep_client, capabilities_choose_aes_sha256_else_3des_sha1_and_des_md5_only_when_legacy) {
    ca_caps modern{{"AES", "SHA-256", "POSTPKIOperation"}, 200};
    EXPECT_EQ(modern.cipher_nid(false), NID_aes_128_cbc);
    EXPECT_EQ(modern.digest_nid(false), NID_sha256);
    EXPECT_TRUE(modern.post_supported());
    ca_caps standard{{"scepstandard"}, 200};  // clients ignore case (RFC 8894 §3.5.2)
    EXPECT_EQ(standard.cipher_nid(false), NID_aes_128_cbc);
    EXPECT_TRUE(standard.post_supported());
    ca_caps none;
    EXPECT_EQ(none.cipher_nid(false), NID_des_ede3_cbc);
    EXPECT_EQ(none.digest_nid(false), NID_sha1);
    EXPECT_EQ(none.cipher_nid(true), NID_des_cbc);
    EXPECT_EQ(none.digest_nid(true), NID_md5);
    EXPECT_FALSE(none.post_supported());
}

TEST(scep_client, ios_get_next_ca_cert_404_is_no_rollover_not_an_error) {
    scripted_server srv{[](const http_request&) { return ios_404; }};
    scep_client c{fast(ios_client_options(srv.url(), "TP"))};
    auto ca = make_ca();
    std::vector<x509_ptr> v;
    v.push_back(share(ca.cert.get()));
    auto current = classify_ca_certs(std::move(v), "").value();
    auto r = c.get_next_ca_cert(current);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_FALSE(r->available);
    EXPECT_EQ(r->http_status, 404u);
    auto reqs = srv.requests();
    ASSERT_EQ(reqs.size(), 1u);
    // ios-pki-model.md §2.3: exactly what IOS sends.
    EXPECT_EQ(reqs[0].request_line(),
              "GET /cgi-bin/pkiclient.exe?operation=GetNextCACert&message=TP HTTP/1.0");
    EXPECT_EQ(reqs[0].header("User-Agent"), "Mozilla/4.0 (compatible; MSIE 5.0; Cisco PKI)");
}

TEST(scep_client, get_next_ca_cert_500_is_an_http_error_with_the_status) {
    scripted_server srv{
        [](const http_request&) { return response(500, "Internal Server Error", "", "panic"); }};
    scep_client c{fast_url(srv.url())};
    auto ca = make_ca();
    std::vector<x509_ptr> v;
    v.push_back(share(ca.cert.get()));
    auto r = c.get_next_ca_cert(classify_ca_certs(std::move(v), "").value());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, client_error::http_status);
    EXPECT_EQ(r.error().http_status, 500u);
    EXPECT_NE(r.error().message().find("HTTP 500"), std::string::npos) << r.error().message();
}

TEST(scep_client, get_next_ca_cert_200_is_verified_against_the_current_ca) {
    auto ca = make_ca();
    auto shadow = make_shadow(ca);
    auto other = make_ca("client2", "CN=impostor");
    auto body = encode_get_next_ca_cert(std::vector<X509*>{shadow.cert.get()}, ca.cert.get(),
                                        ca.key, NID_sha256, test_epoch())
                    .value();
    auto forged = encode_get_next_ca_cert(std::vector<X509*>{shadow.cert.get()}, other.cert.get(),
                                          other.key, NID_sha256, test_epoch())
                      .value();
    std::atomic<int> n{0};
    scripted_server srv{[&](const http_request&) {
        return ok("application/x-x509-next-ca-cert", n++ == 0 ? body : forged);
    }};
    scep_client c{fast_url(srv.url())};
    std::vector<x509_ptr> v;
    v.push_back(share(ca.cert.get()));
    auto current = classify_ca_certs(std::move(v), "").value();
    auto r = c.get_next_ca_cert(current);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_TRUE(r->available);
    ASSERT_EQ(r->certs.size(), 1u);
    EXPECT_EQ(X509_cmp(r->certs[0].get(), shadow.cert.get()), 0);
    auto bad = c.get_next_ca_cert(current);
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code, client_error::bad_response);
}

TEST(scep_client, get_ca_cert_picks_the_ra_for_encryption_from_a_ca_ra_bundle) {
    auto ca = make_ca();
    auto ra = make_ra(ca);
    // RA first: the order is undefined (scep-wire §1.6); the choice must come from keyUsage.
    auto body = degenerate_certs_only(std::vector<X509*>{ra.cert.get(), ca.cert.get()});
    scripted_server srv{
        [&](const http_request&) { return ok("application/x-x509-ca-ra-cert", body); }};
    scep_client c{fast_url(srv.url())};
    auto r = c.get_ca_cert();
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->content_type, "application/x-x509-ca-ra-cert");
    EXPECT_EQ(r->certs.size(), 2u);
    EXPECT_TRUE(r->ra_mode());
    EXPECT_EQ(X509_cmp(r->ca.get(), ca.cert.get()), 0);
    EXPECT_EQ(X509_cmp(r->encryption.get(), ra.cert.get()), 0);
    EXPECT_EQ(X509_cmp(r->signer.get(), ra.cert.get()), 0);
}

TEST(scep_client, get_ca_cert_single_der_is_the_ca_for_everything) {
    auto ca = make_ca();
    auto der = to_der(ca.cert.get());
    scripted_server srv{[&](const http_request&) { return ok("application/x-x509-ca-cert", der); }};
    auto r = scep_client{fast_url(srv.url())}.get_ca_cert();
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_FALSE(r->ra_mode());
    EXPECT_EQ(X509_cmp(r->encryption.get(), ca.cert.get()), 0);
}

TEST(scep_client, garbage_body_is_a_bad_response) {
    scripted_server srv{[](const http_request&) {
        return response(200, "OK", "application/x-x509-ca-cert", "this is not DER at all");
    }};
    auto r = scep_client{fast_url(srv.url())}.get_ca_cert();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, client_error::bad_response);
}

TEST(scep_client, slow_server_is_a_read_timeout) {
    scripted_server srv{[](const http_request&) { return std::optional<std::string>{}; }};
    auto o = fast_url(srv.url());
    o.read_timeout = milliseconds{200};
    auto start = std::chrono::steady_clock::now();
    auto r = scep_client{o}.get_ca_caps();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, client_error::read_timeout) << r.error().message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{3});
}

TEST(scep_client, closed_port_is_connection_refused) {
    unsigned short port = 0;
    {
        net::io_context ioc;
        tcp::acceptor a{ioc, {net::ip::make_address("127.0.0.1"), 0}};
        port = a.local_endpoint().port();
    }
    auto r = scep_client{fast_url("http://127.0.0.1:" + std::to_string(port))}.get_ca_caps();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, client_error::connect_refused) << r.error().message();
}

TEST(scep_client, listener_that_never_accepts_is_a_connect_timeout) {
    // A full accept queue drops SYNs: what a client sees from a deaf IOS listener
    // (ios-pki-model.md §2.5, §3). Backlog 0 holds one connection; we fill it ourselves.
    net::io_context ioc;
    tcp::acceptor a{ioc};
    a.open(tcp::v4());
    a.bind({net::ip::make_address("127.0.0.1"), 0});
    a.listen(0);
    const auto port = a.local_endpoint().port();
    // Non-blocking POSIX connects: they fill the queue without waiting for it.
    std::vector<int> fillers;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 4; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        ASSERT_GE(fd, 0);
        ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        fillers.push_back(fd);
    }
    struct closer {
        std::vector<int>& fds;
        ~closer() {
            for (int fd : fds)
                ::close(fd);
        }
    } close_fillers{fillers};
    auto o = fast_url("http://127.0.0.1:" + std::to_string(port));
    o.connect_timeout = milliseconds{300};
    auto r = scep_client{o}.get_ca_caps();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, client_error::connect_timeout) << r.error().message();
}

// A SCEP responder built with the codec: PENDING for `pending_polls` answers, then SUCCESS
// (or FAILURE when `reject`).
struct scep_responder {
    authority ca = make_ca();
    int pending_answers = 0;
    bool reject = false;
    std::vector<message_type> seen_types;
    std::vector<std::string> seen_tids;
    std::vector<int> seen_ciphers;
    x509_req_ptr csr;
    x509_ptr last_issued;
    std::uint64_t serial = 10;

    std::optional<std::string> operator()(const http_request& r) {
        auto op = r.param("operation");
        if (op == "GetCACaps") {
            return response(200, "OK", "text/plain", get_ca_caps_body(false));
        }
        if (op == "GetCACert")
            return ok("application/x-x509-ca-cert", to_der(ca.cert.get()));
        bytes der;
        if (r.head.rfind("POST", 0) == 0) {
            der.assign(r.body.begin(), r.body.end());
        } else {
            der = lenient_base64_decode(percent_decode(r.param("message"))).value_or(bytes{});
        }
        std::array keys{ca.decryption()};
        auto req = decode_pki_message(der, keys);
        if (!req)
            return response(400, "Bad Request", "text/plain", req.error().text);
        seen_types.push_back(req->type);
        seen_tids.push_back(req->transaction_id);
        seen_ciphers.push_back(req->cipher_nid);
        if (const auto* c = req->csr())
            csr.reset(X509_REQ_dup(c->csr.get()));
        cert_rep_params p;
        if (req->type == message_type::get_crl) {
            auto crl = make_crl(ca.cert.get(), ca.key,
                                std::vector<revoked_entry>{{7, test_epoch(), std::nullopt}},
                                test_epoch(), test_epoch() + pkisim::timers::days{1}, 1,
                                pkisim::timers::hash_algorithm::sha256)
                           .value();
            p = success_for(req->context(), ca.cert.get(), ca.key, {}, test_epoch());
            p.crls = {crl.get()};
            return ok("application/x-pki-message", encode_cert_rep(p).value());
        }
        if (req->type == message_type::get_cert) {
            if (!last_issued || serial_hex(last_issued.get()) != cert_id_of(*req).serial_hex) {
                p = failure_for(req->context(), ca.cert.get(), ca.key, fail_info::bad_cert_id,
                                "unknown serial", test_epoch());
            } else {
                p = success_for(req->context(), ca.cert.get(), ca.key, {last_issued.get()},
                                test_epoch());
            }
            return ok("application/x-pki-message", encode_cert_rep(p).value());
        }
        if (reject) {
            p = failure_for(req->context(), ca.cert.get(), ca.key, fail_info::bad_request,
                            "challenge password wrong", test_epoch());
        } else if (pending_answers-- > 0) {
            p = pending_for(req->context(), ca.cert.get(), ca.key, test_epoch());
        } else {
            issue_options io;
            io.validity = {test_epoch(), test_epoch() + pkisim::timers::days{365}};
            io.serial = serial++;
            auto issued = issue_certificate(csr.get(), ca.cert.get(), ca.key, io).value();
            last_issued = share(issued.get());
            p = success_for(req->context(), ca.cert.get(), ca.key, {issued.get()}, test_epoch());
            return ok("application/x-pki-message", encode_cert_rep(p).value());
        }
        return ok("application/x-pki-message", encode_cert_rep(p).value());
    }
};

TEST(scep_client, enroll_polls_a_pending_request_until_issued_without_waiting) {
    scep_responder resp;
    resp.pending_answers = 3;  // PKCSReq and two CertPolls pending, the third poll issues
    std::mutex m;
    scripted_server srv{[&](const http_request& r) {
        std::lock_guard lock{m};
        return resp(r);
    }};
    scep_client c{fast(ios_client_options(srv.url(), "TP"))};
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    std::vector<milliseconds> slept;
    poll_options po;
    po.interval = milliseconds{60'000};
    po.max_polls = 5;
    po.sleep = [&](milliseconds d) { slept.push_back(d); };
    enroll_request er;
    er.key = fixture_key("client1");
    er.subject = "CN=router1,O=lab";
    er.challenge = "secret";
    auto r = c.enroll(er, caps, ca, po);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->status, pki_status::success);
    EXPECT_EQ(r->polls, 3u);
    EXPECT_EQ(slept, (std::vector<milliseconds>{milliseconds{60'000}, milliseconds{60'000},
                                                milliseconds{60'000}}));
    ASSERT_TRUE(r->cert);
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(r->cert.get()), fixture_key("client1")));
    EXPECT_EQ(X509_verify(r->cert.get(), resp.ca.key), 1);
    std::lock_guard lock{m};
    EXPECT_EQ(resp.seen_types,
              (std::vector<message_type>{message_type::pkcs_req, message_type::cert_poll,
                                         message_type::cert_poll, message_type::cert_poll}));
    for (const auto& t : resp.seen_tids)
        EXPECT_EQ(t, resp.seen_tids.front());
    EXPECT_EQ(resp.seen_ciphers.front(), NID_aes_128_cbc);  // get_ca_caps_body lists AES
    // IOS: every PKIOperation by GET, HTTP/1.0, with %0A line breaks.
    auto reqs = srv.requests();
    ASSERT_EQ(reqs.size(), 6u);
    EXPECT_EQ(reqs[2].request_line().rfind("GET /cgi-bin/pkiclient.exe?operation=PKIOperation&"
                                           "message=",
                                           0),
              0u);
    EXPECT_NE(reqs[2].target().find("%0A"), std::string::npos);
    EXPECT_NE(reqs[2].request_line().find("HTTP/1.0"), std::string::npos);
}

TEST(scep_client, enroll_still_pending_after_max_polls_returns_pending_state) {
    scep_responder resp;
    resp.pending_answers = 100;
    std::mutex m;
    scripted_server srv{[&](const http_request& r) {
        std::lock_guard lock{m};
        return resp(r);
    }};
    scep_client c{fast_url(srv.url())};
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    poll_options po;
    po.max_polls = 2;
    po.sleep = [](milliseconds) {};
    enroll_request er;
    er.key = fixture_key("client1");
    er.subject = "CN=router1,O=lab";
    auto r = c.enroll(er, caps, ca, po);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->status, pki_status::pending);
    EXPECT_EQ(r->polls, 2u);
    // Resume later (another process): same transactionID from the same key, poll issues.
    {
        std::lock_guard lock{m};
        resp.pending_answers = 0;
    }
    auto pending = c.resume(fixture_key("client1"), "CN=router1,O=lab", caps).value();
    EXPECT_EQ(pending.transaction_id, r->transaction_id);
    auto done = c.poll(pending, caps, ca, po);
    ASSERT_TRUE(done.has_value()) << done.error().message();
    EXPECT_EQ(done->status, pki_status::success);
    EXPECT_EQ(done->polls, 1u);
    // POST, since GetCACaps lists POSTPKIOperation.
    auto reqs = srv.requests();
    EXPECT_EQ(reqs.back().request_line().rfind("POST ", 0), 0u);
}

TEST(scep_client, rejected_enrollment_is_a_scep_failure_with_fail_info_and_text) {
    scep_responder resp;
    resp.reject = true;
    std::mutex m;
    scripted_server srv{[&](const http_request& r) {
        std::lock_guard lock{m};
        return resp(r);
    }};
    scep_client c{fast_url(srv.url())};
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    enroll_request er;
    er.key = fixture_key("client2");
    er.subject = "CN=router2,O=lab";
    auto r = c.enroll(er, caps, ca);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, client_error::scep_failure);
    EXPECT_EQ(r.error().failure, fail_info::bad_request);
    EXPECT_EQ(r.error().text, "challenge password wrong");
}

TEST(scep_client, renewal_is_signed_with_the_old_certificate_as_renewal_req_or_pkcs_req) {
    scep_responder resp;
    std::mutex m;
    scripted_server srv{[&](const http_request& r) {
        std::lock_guard lock{m};
        return resp(r);
    }};
    scep_client c{fast_url(srv.url())};
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    enroll_request er;
    er.key = fixture_key("client1");
    er.subject = "CN=router1,O=lab";
    auto first = c.enroll(er, caps, ca).value();
    er.renew_cert = first.cert.get();
    er.renew_key = fixture_key("client1");
    er.key = fixture_key("client2");  // IOS `regenerate`: a new key
    auto renewed = c.enroll(er, caps, ca);
    ASSERT_TRUE(renewed.has_value()) << renewed.error().message();
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(renewed->cert.get()), fixture_key("client2")));
    er.renewal_as_pkcs_req = true;
    ASSERT_TRUE(c.enroll(er, caps, ca).has_value());
    std::lock_guard lock{m};
    EXPECT_EQ(resp.seen_types,
              (std::vector<message_type>{message_type::pkcs_req, message_type::renewal_req,
                                         message_type::pkcs_req}));
}

TEST(scep_client, one_client_shared_by_a_thread_pool_enrolls_from_every_thread) {
    scep_responder resp;
    std::mutex m;
    scripted_server srv{[&](const http_request& r) {
        std::lock_guard lock{m};
        return resp(r);
    }};
    const scep_client c{fast_url(srv.url())};
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    const std::array<std::string_view, 2> keys{"client1", "client2"};
    std::atomic<int> issued{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t) {
        pool.emplace_back([&, t] {
            enroll_request er;
            er.key = fixture_key(keys[static_cast<std::size_t>(t) % keys.size()]);
            er.subject = "CN=pool" + std::to_string(t);
            auto r = c.enroll(er, caps, ca);
            if (r && r->status == pki_status::success && r->cert)
                ++issued;
        });
    }
    for (auto& th : pool)
        th.join();
    EXPECT_EQ(issued.load(), 4);
}

TEST(scep_client, get_crl_and_get_cert_are_signed_with_our_certificate_and_read_the_reply) {
    scep_responder resp;
    std::mutex m;
    scripted_server srv{[&](const http_request& r) {
        std::lock_guard lock{m};
        return resp(r);
    }};
    scep_client c{fast_url(srv.url())};
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    enroll_request er;
    er.key = fixture_key("client1");
    er.subject = "CN=router1,O=lab";
    auto mine = c.enroll(er, caps, ca).value();
    client_identity me{mine.cert.get(), fixture_key("client1")};
    auto crl = c.get_crl(me, mine.cert.get(), caps, ca);
    ASSERT_TRUE(crl.has_value()) << crl.error().message();
    EXPECT_TRUE(crl_lists(crl->get(), 7));
    auto again = c.get_cert(me, X509_get0_serialNumber(mine.cert.get()), caps, ca);
    ASSERT_TRUE(again.has_value()) << again.error().message();
    EXPECT_EQ(X509_cmp(again->get(), mine.cert.get()), 0);
    auto unknown_serial = asn1_integer_ptr{ASN1_INTEGER_new()};
    ASN1_INTEGER_set(unknown_serial.get(), 999);
    auto missing = c.get_cert(me, unknown_serial.get(), caps, ca);
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().failure, fail_info::bad_cert_id);
}

TEST(scep_client, ra_forwards_a_client_csr_signed_with_its_own_certificate) {
    scep_responder resp;
    std::mutex m;
    scripted_server srv{[&](const http_request& r) {
        std::lock_guard lock{m};
        return resp(r);
    }};
    scep_client c{fast_url(srv.url())};
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    auto ra = make_ra(resp.ca);
    csr_options co;
    co.challenge_password = "secret";
    auto client_csr = make_csr(fixture_key("client2"), "CN=behind-ra,O=lab", co);
    enroll_request er;
    er.forward_csr = client_csr.get();
    er.ra_cert = ra.cert.get();
    er.ra_key = ra.key;
    auto r = c.enroll(er, caps, ca);
    ASSERT_TRUE(r.has_value()) << r.error().message();
    ASSERT_EQ(r->status, pki_status::success);
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(r->cert.get()), fixture_key("client2")));
    EXPECT_EQ(r->transaction_id, transaction_id_for(fixture_key("client2")));
    EXPECT_EQ(subject_string(r->cert.get()), "CN=behind-ra,O=lab");
}

}  // namespace
