// Issue 11 §2.9: the OCSP responder's own port (--ocsp-listen). The acceptor lives on the
// network thread beside the SCEP one; each connection is served by the SCEP transport's session
// (server_transport.cpp, start_ocsp_session: the same timeouts, size limits, lingering close
// and access log) and answered on the engine thread (ca_engine::ocsp, ocsp.hpp). Not behind the
// IOS limiter: IOS has no OCSP responder on its certificate server, so there is nothing to copy;
// bounded by http_options::max_ocsp_open instead.
#include "server_impl.hpp"

#include <cerrno>
#include <memory>

#include <fmt/format.h>

namespace pkisim::scep {

tcp::endpoint detail::parse_listen_endpoint(const std::string& text, std::string_view what) {
    const auto colon = text.rfind(':');
    boost::system::error_code ec;
    const auto address = net::ip::make_address(
        colon == std::string::npos ? std::string{} : text.substr(0, colon), ec);
    int port = -1;
    if (!ec && colon != std::string::npos) {
        try {
            std::size_t used = 0;
            const auto digits = text.substr(colon + 1);
            port = std::stoi(digits, &used);
            if (used != digits.size())
                port = -1;
        } catch (const std::exception&) {
            port = -1;
        }
    }
    if (ec || port < 0 || port > 65535) {
        throw startup_error(exit_status::config,
                            fmt::format("bad {} address '{}' (expected ADDRESS:PORT, e.g. "
                                        "127.0.0.1:8081)",
                                        what, text));
    }
    return {address, static_cast<unsigned short>(port)};
}

void server::impl::open_ocsp_listener() {
    if (http.ocsp_listen.empty())
        return;
    const auto ep = detail::parse_listen_endpoint(http.ocsp_listen, "--ocsp-listen");
    boost::system::error_code ec;
    ocsp_acceptor.open(ep.protocol(), ec);
    if (!ec)
        ocsp_acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
        ocsp_acceptor.bind(ep, ec);
    if (!ec)
        ocsp_acceptor.listen(http.backlog, ec);
    if (ec) {
        throw startup_error(exit_status::listen, fmt::format("cannot listen on {} (OCSP): {}",
                                                             http.ocsp_listen, ec.message()));
    }
}

void server::impl::do_ocsp_accept() {
    if (!ocsp_acceptor.is_open() || stopped)
        return;
    ocsp_acceptor.async_accept(net_ctx, [this](boost::system::error_code ec, tcp::socket s) {
        if (ec == net::error::operation_aborted || stopped)
            return;
        if (ec == net::error::no_descriptors || ec.value() == ENFILE) {
            // Out of descriptors: retry later rather than spin (the SCEP side sheds load).
            auto wait =
                std::make_shared<net::steady_timer>(net_ctx, std::chrono::milliseconds{100});
            wait->async_wait([this, wait](boost::system::error_code e) {
                if (!e)
                    do_ocsp_accept();
            });
            return;
        }
        if (!ec) {
            if (ocsp_open >= http_options::max_ocsp_open) {
                detail::abort_close(s);  // a resource bound, like --max-open on SCEP
            } else {
                detail::start_ocsp_session(*this, std::move(s));
            }
        }
        do_ocsp_accept();
    });
}

}  // namespace pkisim::scep
