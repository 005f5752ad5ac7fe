#include "enrollment_core.hpp"

#include <fmt/format.h>

#include "engine_text.hpp"
#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep::detail {

std::string request_meta(std::int64_t id, std::string_view what) {
    return fmt::format("req:{}:{}", id, what);
}

enrollment_core::enrollment_core(signer_strategy& strategy, store& db,
                                 const engine_options& options, const timers::clock& clock)
    : strategy_(strategy), db_(db), options_(options), clock_(clock) {
    add_command("grant", [this](std::span<const std::string_view> a, time_point now) {
        if (a.size() != 1)
            return admin_result{false, "% Usage: grant all|ID\n"};
        return admin_result{true, grant(a[0], now)};
    });
    add_command("reject", [this](std::span<const std::string_view> a, time_point) {
        if (a.size() != 1)
            return admin_result{false, "% Usage: reject all|ID\n"};
        return admin_result{true, reject(a[0])};
    });
    add_command("password", [this](std::span<const std::string_view> a, time_point now) {
        if (a.empty() || a[0] != "generate")
            return admin_result{false, "% Usage: password generate [MINUTES]\n"};
        return generate_password(db_, a.subspan(1), now);
    });
}

// ---------------------------------------------------------------------------------------------
// Replies.

deferred_reply::deferred_reply(cert_rep_params p, std::string d)
    : params(std::move(p)), detail(std::move(d)) {
    const auto hold = [this](X509* c) {
        if (c)
            held_certs.push_back(share(c));
    };
    hold(params.recipient);
    hold(params.signer_cert);
    for (X509* c : params.extra_certs)
        hold(c);
    for (X509* c : params.issued)
        hold(c);
    if (params.signer_key)
        held_keys.push_back(share(params.signer_key));
    for (X509_CRL* c : params.crls)
        held_crls.push_back(share(c));
}

http_answer deferred_reply::finish() && {
    if (ready)
        return std::move(*ready);
    return cert_rep_answer(std::move(params), std::move(detail));
}

deferred_reply enrollment_core::later_fail(const reply_context& ctx, const reply_signer& s,
                                           fail_info info, std::string text, time_point now) {
    auto detail = fmt::format("FAILURE {}: {}", to_string(info), text);
    auto p = failure_for(ctx, s.cert, s.key, info, std::move(text), now);
    if (s.above)
        p.extra_certs.push_back(s.above);
    return {std::move(p), std::move(detail)};
}

deferred_reply enrollment_core::later_pending(const reply_context& ctx, const reply_signer& s,
                                              std::string detail, time_point now) {
    auto p = pending_for(ctx, s.cert, s.key, now);
    if (s.above)
        p.extra_certs.push_back(s.above);
    return {std::move(p), std::move(detail)};
}

deferred_reply enrollment_core::later_success(const reply_context& ctx, const reply_signer& s,
                                              X509* cert, std::string detail, time_point now) {
    auto p = success_for(ctx, s.cert, s.key, {cert}, now);
    if (s.above)
        p.extra_certs.push_back(s.above);
    // scep-wire §1.5: the issuing CA too when asked (Cisco VPN clients).
    if (options_.include_ca_in_success)
        p.issued.push_back(s.above ? s.above : s.cert);
    return {std::move(p), std::move(detail)};
}

http_answer enrollment_core::fail(const reply_context& ctx, const reply_signer& s, fail_info info,
                                  std::string text, time_point now) {
    return later_fail(ctx, s, info, std::move(text), now).finish();
}

http_answer enrollment_core::pending(const reply_context& ctx, const reply_signer& s,
                                     std::string detail, time_point now) {
    return later_pending(ctx, s, std::move(detail), now).finish();
}

http_answer enrollment_core::success(const reply_context& ctx, const reply_signer& s, X509* cert,
                                     std::string detail, time_point now) {
    return later_success(ctx, s, cert, std::move(detail), now).finish();
}

// ---------------------------------------------------------------------------------------------
// PKIOperation.

decode_options enrollment_core::decode_opts() const {
    decode_options opts;
    opts.allow_legacy = options_.legacy_crypto;
    return opts;
}

http_answer enrollment_core::pki_operation(byte_view der, time_point now) {
    const auto keys = strategy_.decryption_keys();
    return operate(decode_pki_message(der, keys, decode_opts()), now).finish();
}

deferred_reply enrollment_core::operate(tl::expected<pki_request, decode_failure> req,
                                        time_point now) {
    // Who signs the reply: the rollover key when the request was encrypted to it (rule 6; the
    // client verifies that CertRep against the rollover CA it enrolls to, research §2), else
    // the current one.
    const reply_signer s = strategy_.signer_for(req ? req->recipient_index : 0);
    if (!req) {
        const auto& f = req.error();
        const auto w = to_wire(f);
        if (w.failure && f.context)
            return later_fail(*f.context, s, *w.failure, f.text, now);
        const unsigned status = w.http_status == 200 ? 400 : w.http_status;
        return http_answer{status, "text/plain", f.text + "\n", false, "malformed: " + f.text};
    }
    try {
        switch (req->type) {
            case message_type::pkcs_req:
            case message_type::renewal_req:
                return enroll(*req, s, now);
            case message_type::cert_poll:
                return poll(*req, s, now);
            case message_type::get_cert:
                return strategy_.get_cert(*req, s, now);
            case message_type::get_crl:
                return strategy_.get_crl(*req, s, now);
            case message_type::cert_rep:
                break;
        }
        return later_fail(req->context(), s, fail_info::bad_request, "unexpected messageType", now);
    } catch (const std::exception& e) {
        // Store or OpenSSL failure on our side: the client may retry (never a FAILURE that
        // would make it give up on a request we might still hold).
        return internal_error_answer(std::string{"internal: "} + e.what());
    }
}

deferred_reply enrollment_core::enroll(const pki_request& req, const reply_signer& s,
                                       time_point now) {
    const auto ctx = req.context();
    const csr_request* csr = req.csr();
    if (!csr)
        return later_fail(ctx, s, fail_info::bad_request, "no CSR", now);
    const std::string type_name{to_string(req.type)};
    // CSR rules (policy.hpp): key type and size.
    if (auto key_ok = check_csr_key(csr->public_key, options_.min_rsa_bits); !key_ok)
        return later_fail(ctx, s, key_ok.error().info, key_ok.error().text, now);
    // Issue 11 §2.3: a certificate is only committed when its CertRep can be built, i.e. the
    // reply can be encrypted to the requester's signer certificate with its cipher.
    if (auto env = check_reply_envelope(req.signer.get(), ctx.cipher_nid); !env) {
        return later_fail(
            ctx, s, fail_info_for(env.error()),
            fmt::format("cannot encrypt a reply to the signer's key: {}", env.error().message()),
            now);
    }

    // scep-wire §0.12: renewal is classified by the signer certificate, not the message type.
    bool renewal = false;
    // Issue 4 §2, the CA side of RA mode: a PKCSReq signed by an RA certificate we issued
    // (subject OU=ioscs RA, research §5) for ANOTHER key is a client's request the RA checked
    // (challenge, grant mode) and forwarded; for the RA's own key it is the RA's renewal or
    // rollover request.
    bool ra_forwarded = false;
    bool ra_own_request = false;
    if (!req.signer_is_self_signed) {
        const auto anchors = strategy_.renewal_anchors();
        auto chain = verify_signer_chain(req.signer.get(), anchors, now);
        if (chain) {
            renewal = true;
            if (strategy_.is_ra_certificate(req.signer.get())) {
                if (same_public_key(X509_get0_pubkey(req.signer.get()), csr->public_key)) {
                    ra_own_request = is_ra_subject(X509_REQ_get_subject_name(csr->csr.get()));
                } else {
                    ra_forwarded = true;
                    renewal = false;  // the client's enrollment, not a renewal of the RA
                }
            }
        } else if (req.type == message_type::renewal_req ||
                   strategy_.claims_our_issuer(req.signer.get())) {
            // A RenewalReq, or a certificate that claims to be ours but does not verify now
            // (expired, another key, forged).
            return later_fail(ctx, s, fail_info_for(chain.error()),
                              fmt::format("renewal signer rejected: {}", chain.error().message()),
                              now);
        }
        // Otherwise a PKCSReq signed by a foreign certificate: an initial enrollment.
    } else if (req.type == message_type::renewal_req) {
        return later_fail(ctx, s, fail_info::bad_request,
                          "RenewalReq signed by a self-signed certificate", now);
    }

    const std::string signer_key = key_hash(req.signer.get());
    const std::string signer_cert = sha256_fingerprint(req.signer.get());
    // scep-wire §0.11/§0.13: transactionIDs repeat; the same (transactionID, signer key, CSR)
    // is a re-sent request (micromdm re-sends PKCSReq instead of CertPoll; certmonger makes a
    // new self-signed signer for the same key) and is answered as a poll. A renewal signed by
    // an issued certificate is new even with the same key and CSR (micromdm reuses both) unless
    // it is signed by the same certificate. The same transactionID and key with another CSR
    // while the first is pending is a replay with altered content.
    // Only requests to the same CA generation count: the identical PKCSReq encrypted to the
    // shadow is the client's rollover request (rule 6), not a re-send of its first enrollment
    // (IOS and `pkisim client` reuse the key, hence the transactionID and the CSR).
    for (auto& r : db_.requests_by_transaction(req.transaction_id)) {
        if (r.signer_key_hash != signer_key || r.ca_generation != s.generation)
            continue;
        const bool same_signer =
            r.renewal == renewal && (!renewal || r.signer_cert_hash == signer_cert);
        if (same_signer && r.csr_der == csr->der)
            return answer_existing(req, s, std::move(r), now);
        if (r.state == request_state::pending && now < r.expires) {
            return later_fail(ctx, s, fail_info::bad_request,
                              fmt::format("transactionID already used by pending request {} with "
                                          "another CSR",
                                          r.id),
                              now);
        }
    }

    // The policy, written once (policy.hpp).
    auto challenge = check_challenge(csr->challenge_password, options_.challenge,
                                     options_.server.grant, renewal || ra_forwarded, db_, now);
    if (!challenge)
        return later_fail(ctx, s, challenge.error().info, challenge.error().text, now);
    if (renewal) {
        // Issue 11 §2.1: not with a revoked certificate; no new identity without a challenge.
        auto ok = check_renewal(req.signer.get(), strategy_.revocation(req.signer.get(), now), *csr,
                                *challenge, options_.renewal_identity_change);
        if (!ok)
            return later_fail(ctx, s, ok.error().info, ok.error().text, now);
    }
    const auto decision =
        decide_grant(options_.server.grant, *challenge, ra_forwarded || ra_own_request);
    if (decision == grant_decision::refuse) {
        // IOS `grant none`: every request is rejected.
        return later_fail(ctx, s, fail_info::bad_request,
                          strategy_.role() == "RA" ? "request rejected by the RA (grant none)"
                                                   : "request rejected (grant none)",
                          now);
    }

    request_record r;
    r.transaction_id = req.transaction_id;
    r.signer_key_hash = signer_key;
    r.signer_cert_hash = signer_cert;
    r.state = request_state::pending;
    r.csr_der = csr->der;
    r.parsed_csr = csr->csr.get();
    r.subject = csr->subject;
    r.fingerprint = md5_upper_hex(csr->der);
    r.renewal = renewal;
    r.ca_generation = s.generation;  // rule 6: a request encrypted to the shadow goes there
    r.created = now;
    r.expires = now + options_.server.enrollment_request_lifetime;  // `lifetime enrollment-request`
    const auto record = [&] {
        r.id = db_.add_request(r);
        if (s.rollover)
            db_.set_meta(request_meta(r.id, "rollover"), "1");
    };

    if (decision == grant_decision::hold) {
        record();
        return later_pending(
            ctx, s,
            fmt::format("{} PENDING request {}{}", type_name, r.id,
                        strategy_.role() == "RA" ? " (waiting for the RA operator)" : ""),
            now);
    }
    fulfilment f;
    if (strategy_.issues_locally()) {
        // Issue 13 §2: the request row and its certificate commit in ONE transaction, so that a
        // kill -9 never leaves a request that its grant mode issues at once pending; one that
        // cannot be issued is stored rejected, never pending.
        db_.transact([&] {
            record();
            strategy_.before_grant(r);
            f = strategy_.grant(r, now);
            if (f.status == pki_status::failure)
                db_.set_request_state(r.id, request_state::rejected);
        });
    } else {
        // The RA forwards upstream (network I/O): no transaction held across it.
        record();
        strategy_.before_grant(r);
        f = strategy_.grant(r, now);
    }
    switch (f.status) {
        case pki_status::success:
            return later_success(
                ctx, s, f.cert.get(),
                fmt::format("{} SUCCESS serial {} (request {}){}{}", type_name,
                            serial_hex(f.cert.get()), r.id, s.rollover ? " (rollover CA)" : "",
                            ra_forwarded ? " (forwarded by RA)" : ""),
                now);
        case pki_status::pending:
            return later_pending(
                ctx, s, fmt::format("{} PENDING request {} ({})", type_name, r.id, f.text), now);
        case pki_status::failure:
            break;
    }
    return later_fail(ctx, s, f.failure, f.text, now);
}

deferred_reply enrollment_core::poll(const pki_request& req, const reply_signer& s,
                                     time_point now) {
    // RFC 8894 §3.3.3: match on transactionID; the IssuerAndSubject issuer is not trusted
    // (scep-wire §0.13). Prefer the request with the same key made to the same CA generation (a
    // rollover request and the first enrollment share key and transactionID), then the same
    // key.
    auto rows = db_.requests_by_transaction(req.transaction_id);
    if (rows.empty()) {
        return later_fail(req.context(), s, fail_info::bad_request,
                          "CertPoll for an unknown transactionID", now);
    }
    const std::string signer_key = key_hash(req.signer.get());
    for (auto& r : rows) {
        if (r.signer_key_hash == signer_key && r.ca_generation == s.generation)
            return answer_existing(req, s, std::move(r), now);
    }
    for (auto& r : rows) {
        if (r.signer_key_hash == signer_key)
            return answer_existing(req, s, std::move(r), now);
    }
    return answer_existing(req, s, std::move(rows.front()), now);
}

deferred_reply enrollment_core::answer_existing(const pki_request& req, const reply_signer& s,
                                                request_record r, time_point now) {
    const auto ctx = req.context();
    const std::string type_name{to_string(req.type)};
    if (r.state == request_state::pending && now >= r.expires) {
        db_.set_request_state(r.id, request_state::expired);
        r.state = request_state::expired;
    }
    switch (r.state) {
        case request_state::pending:
            return later_pending(
                ctx, s,
                fmt::format("{} PENDING request {}{}", type_name, r.id,
                            strategy_.role() == "RA" ? " (waiting for the RA operator)" : ""),
                now);
        case request_state::granted:
        case request_state::issued: {
            // RFC 8894 Figure 11/13: keep issued certificates retrievable by transactionID.
            auto f = strategy_.retrieve(r, now);
            if (f.status == pki_status::success) {
                return later_success(ctx, s, f.cert.get(),
                                     fmt::format("{} SUCCESS serial {} (request {})", type_name,
                                                 serial_hex(f.cert.get()), r.id),
                                     now);
            }
            if (f.status == pki_status::pending) {
                return later_pending(
                    ctx, s, fmt::format("{} PENDING request {} ({})", type_name, r.id, f.text),
                    now);
            }
            return later_fail(ctx, s, f.failure, f.text, now);
        }
        case request_state::rejected: {
            // "<failInfo>\n<text>" as the CA (or the operator) answered.
            const auto stored = db_.meta(request_meta(r.id, "fail"));
            if (!stored) {
                return later_fail(ctx, s, fail_info::bad_request,
                                  fmt::format("request {} was rejected", r.id), now);
            }
            const auto nl = stored->find('\n');
            const auto code = parse_u64(stored->substr(0, nl)).value_or(2);
            const auto info = code <= 4 ? static_cast<fail_info>(code) : fail_info::bad_request;
            return later_fail(
                ctx, s, info,
                nl == std::string::npos ? std::string{"rejected"} : stored->substr(nl + 1), now);
        }
        case request_state::expired:
            return later_fail(ctx, s, fail_info::bad_request,
                              fmt::format("request {} expired", r.id), now);
    }
    return later_fail(ctx, s, fail_info::bad_request, "unknown request state", now);
}

// ---------------------------------------------------------------------------------------------
// Operator commands.

void enrollment_core::add_command(std::string name, admin_handler handler) {
    commands_.push_back({std::move(name), std::move(handler)});
}

admin_result enrollment_core::admin(std::string_view line, time_point now) {
    const auto w = words(line);
    if (w.empty())
        return {false, "% empty command\n"};
    try {
        db_.expire_requests(now);
        for (const auto& c : commands_) {
            if (c.name == w[0])
                return c.run(std::span{w}.subspan(1), now);
        }
    } catch (const std::exception& e) {
        return {false, fmt::format("% internal error: {}\n", e.what())};
    }
    return {false, fmt::format("% Invalid command: {}\n", line)};
}

enrollment_core::selection enrollment_core::select_pending(std::string_view what) {
    selection out;
    if (what == "all") {
        for (auto& r : db_.requests()) {
            if (r.state == request_state::pending)
                out.requests.push_back(std::move(r));
        }
        if (out.requests.empty())
            out.error = "% No pending requests\n";
        return out;
    }
    auto id = parse_u64(what);
    auto r = id ? db_.request(static_cast<std::int64_t>(*id)) : std::nullopt;
    if (!r || r->state != request_state::pending) {
        out.error = fmt::format("% Request {} is not pending\n", what);
        return out;
    }
    out.requests.push_back(std::move(*r));
    return out;
}

std::string enrollment_core::grant(std::string_view what, time_point now) {
    auto sel = select_pending(what);
    if (!sel.error.empty())
        return sel.error;
    std::string out;
    for (auto& r : sel.requests) {
        strategy_.before_grant(r);
        out += strategy_.granted_line(r, strategy_.grant(r, now));
    }
    return out;
}

std::string enrollment_core::reject(std::string_view what) {
    auto sel = select_pending(what);
    if (!sel.error.empty())
        return sel.error;
    std::string out;
    for (const auto& r : sel.requests) {
        db_.set_meta(request_meta(r.id, "fail"),
                     fmt::format("2\nrejected by the {} operator", strategy_.role()));
        db_.set_request_state(r.id, request_state::rejected);
        out += fmt::format("% Rejected request {}\n", r.id);
    }
    return out;
}

}  // namespace pkisim::scep::detail
