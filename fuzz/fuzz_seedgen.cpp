// Writes the generated seed corpora (checked in under fuzz/corpus; rerun after a codec change):
//   fuzz_seedgen fuzz/corpus
// pki_message/: every request type, cipher and digest, encrypted to the fuzz CA (fuzz_support);
// cert_rep/: CertRep SUCCESS/PENDING/FAILURE from the fuzz CA to client1, a GetNextCACert and a
// certs-only answer (first byte = the fuzz_cert_rep selector);
// ca_engine/: inputs in fuzz_ca_engine's layout.
#include <array>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "fuzz_support.hpp"

using namespace pkisim;

namespace {

void write(const std::filesystem::path& p, const scep::bytes& b) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream{p, std::ios::binary}.write(reinterpret_cast<const char*>(b.data()),
                                             static_cast<std::streamsize>(b.size()));
}

scep::bytes with_prefix(std::uint8_t first, const scep::bytes& b) {
    scep::bytes out{first};
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

void add_text(scep::bytes& out, std::string_view s) {
    out.push_back(static_cast<std::uint8_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz_seedgen CORPUS_DIR\n";
        return 2;
    }
    const std::filesystem::path root = argv[1];
    scep::load_providers(true);
    fuzz::fuzz_ca ca;
    auto client_key = fuzz::fixture_key("client");
    auto signer =
        scep::make_self_signed_signer(client_key.get(), "CN=SCEP SIGNER,O=scep-client",
                                      {fuzz::fuzz_epoch(), fuzz::fuzz_epoch() + timers::days{365}});
    scep::csr_options co;
    co.challenge_password = "secret";
    co.dns_names = {"r1.lab"};
    auto csr = scep::make_csr(client_key.get(), "CN=router1,O=lab", co);

    // pkiMessages.
    int n = 0;
    const std::array<std::pair<int, int>, 5> algs{{{NID_aes_256_cbc, NID_sha256},
                                                   {NID_aes_128_cbc, NID_sha1},
                                                   {NID_des_ede3_cbc, NID_sha512},
                                                   {NID_des_cbc, NID_md5},
                                                   {NID_aes_256_cbc, NID_sha256}}};
    for (const auto type : {scep::message_type::pkcs_req, scep::message_type::renewal_req,
                            scep::message_type::cert_poll, scep::message_type::get_cert,
                            scep::message_type::get_crl}) {
        for (const auto& [cipher, digest] : algs) {
            scep::request_params p;
            p.type = type;
            p.cipher_nid = cipher;
            p.digest_nid = digest;
            p.signer_cert = signer.get();
            p.signer_key = client_key.get();
            p.recipients = {ca.cert.get()};
            p.transaction_id = scep::transaction_id_for(client_key.get());
            p.sender_nonce = scep::bytes(16, 0x5A);
            p.oaep = n % 7 == 6;
            if (type == scep::message_type::pkcs_req || type == scep::message_type::renewal_req) {
                p.message_data = scep::to_der(csr.get());
            } else if (type == scep::message_type::cert_poll) {
                p.message_data = scep::encode_issuer_and_subject(
                    X509_get_subject_name(ca.cert.get()), X509_REQ_get_subject_name(csr.get()));
            } else {
                p.message_data = scep::encode_issuer_and_serial(ca.cert.get());
            }
            auto der = scep::encode_pki_request(p);
            if (!der) {
                std::cerr << "encode: " << der.error().message() << '\n';
                continue;
            }
            write(root / "pki_message" / fmt::format("gen-{:02}.der", n++), *der);
        }
    }

    // CertReps and GetNextCACert, as a server sends them to client1.
    scep::reply_context ctx;
    ctx.transaction_id = scep::transaction_id_for(client_key.get());
    ctx.sender_nonce = scep::bytes(16, 0x5A);
    ctx.signer = scep::x509_ptr{X509_dup(signer.get())};
    ctx.digest_nid = NID_sha256;
    ctx.cipher_nid = NID_aes_256_cbc;
    const auto now = fuzz::fuzz_epoch();
    scep::issue_options io;
    io.validity = {now, now + timers::days{365}};
    io.serial = 2;
    auto cert = scep::issue_certificate(csr.get(), ca.cert.get(), ca.key.get(), io).value();
    std::vector<scep::cert_rep_params> reps;
    reps.push_back(scep::success_for(ctx, ca.cert.get(), ca.key.get(), {cert.get()}, now));
    reps.push_back(scep::pending_for(ctx, ca.cert.get(), ca.key.get(), now));
    reps.push_back(scep::failure_for(ctx, ca.cert.get(), ca.key.get(), scep::fail_info::bad_request,
                                     "fuzz seed", now));
    n = 0;
    for (const auto& r : reps) {
        auto der = scep::encode_cert_rep(r);
        if (der) {
            write(root / "cert_rep" / fmt::format("certrep-{}.bin", n), with_prefix(0x80, *der));
            write(root / "cert_rep" / fmt::format("certrep-untrusted-{}.bin", n),
                  with_prefix(0x00, *der));
        }
        ++n;
    }
    std::array<X509*, 1> next{cert.get()};
    if (auto der =
            scep::encode_get_next_ca_cert(next, ca.cert.get(), ca.key.get(), NID_sha256, now))
        write(root / "cert_rep" / "getnextcacert.bin", with_prefix(0x81, *der));
    std::array<X509*, 2> both{ca.cert.get(), cert.get()};
    write(root / "cert_rep" / "certs-only.bin",
          with_prefix(0x02, scep::degenerate_certs_only(both)));
    write(root / "cert_rep" / "one-cert.bin", with_prefix(0x02, scep::to_der(ca.cert.get())));

    // CA engine inputs: kind, flags, tid, dn, challenge, serial[, raw].
    const std::array<std::uint8_t, 5> kinds{0, 1, 2, 3, 4};
    n = 0;
    for (const auto k : kinds) {
        for (const std::uint8_t flags : {0x00, 0x11, 0x20, 0x45, 0x8A}) {
            scep::bytes in{k, flags};
            add_text(in, n % 3 == 0 ? "" : fmt::format("tid-{}", n));
            add_text(in, fmt::format("CN=router{},OU=fuzz,O=lab", n));
            add_text(in, n % 4 == 0 ? "wrong" : "secret");
            add_text(in, n % 2 == 0 ? "\x02" : "\x01\x00");
            write(root / "ca_engine" / fmt::format("gen-{:02}.bin", n++), in);
        }
    }
    scep::bytes raw{0x80, 0x00};
    add_text(raw, "");
    add_text(raw, "");
    add_text(raw, "");
    add_text(raw, "");
    const auto csr_der = scep::to_der(csr.get());
    raw.insert(raw.end(), csr_der.begin(), csr_der.end());
    write(root / "ca_engine" / "raw-csr.bin", raw);
    std::cout << "seeds written under " << root.string() << '\n';
    return 0;
}
