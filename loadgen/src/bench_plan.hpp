// Private to loadgen/src/bench*.cpp: what prepare_bench builds before the clock starts.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "pkisim/loadgen/bench.hpp"
#include "pkisim/scep/client.hpp"
#include "pkisim/scep/codec.hpp"

namespace pkisim::loadgen {

// One enrollment's request, fully encoded: the whole HTTP request (head + body).
struct prepared_enrollment {
    std::string http;
    std::string transaction_id;
    std::size_t identity = 0;     // who signed it (for CertPoll)
    scep::x509_name_ptr subject;  // CSR subject (CertPoll's IssuerAndSubject)
};

// A key and the certificate it signs requests with: self-signed (PKCSReq) or enrolled first
// (RenewalReq); the CertRep is encrypted to that certificate.
struct bench_identity {
    scep::evp_pkey_ptr key;
    scep::x509_ptr cert;
};

struct bench_plan {
    boost::asio::ip::tcp::endpoint endpoint;
    std::string host_header;  // "127.0.0.1:8080"
    std::string description;
    // Complete HTTP requests per plain operation (index = operation): HTTP/1.0 without
    // keep-alive (connect, mix) and HTTP/1.1 (keepalive).
    std::string request_10[5];
    std::string request_11[5];

    // Enrollment (mode enroll, or mix with enroll).
    std::unique_ptr<scep::scep_client> client;
    scep::ca_caps caps;
    scep::ca_certs ca;
    std::vector<X509*> trusted_signers;
    bool post = false;
    int cipher_nid = 0;
    int digest_nid = 0;
    std::vector<bench_identity> identities;
    std::vector<prepared_enrollment> enrollments;
    std::atomic<std::size_t> next_enrollment{0};
    scep::decode_options decode;
    std::string poll_target;  // GET prefix for CertPoll ("...?operation=PKIOperation&message=")

    // Builds the HTTP request of a CertPoll for `e` (at run time: one signature).
    std::string cert_poll_request(const prepared_enrollment& e) const;
    // Classifies a 200 answer to a PKIOperation.
    outcome classify_cert_rep(std::string_view body, const prepared_enrollment& e) const;
};

// "GET target HTTP/1.0" with Host and the IOS User-Agent; a POST carries `body` as
// application/x-pki-message. HTTP/1.1 asks for keep-alive implicitly.
std::string make_http_request(const bench_plan& plan, bool post, std::string_view target,
                              const scep::bytes* body, bool http10);

// The SCEP client's options for a bench run (HTTP/1.0, the IOS User-Agent, --method).
scep::client_options bench_client_options(const bench_options& o);

// bench_enroll.cpp (plan.client already built): GetCACaps + GetCACert, keys, identities (and their
// first enrollment for
// --renew), then the pre-built requests. Error text for the CLI.
tl::expected<void, std::string> prepare_enrollment(bench_plan& plan, const bench_options& o);

}  // namespace pkisim::loadgen
