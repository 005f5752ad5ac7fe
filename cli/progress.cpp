// See progress.hpp.
#include "progress.hpp"

#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <openssl/evp.h>

namespace pkisim::cli {

namespace {

std::string g_command_line;

std::string quote(const std::string& a) {
    if (!a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789-_./=:,+@%") == std::string::npos)
        return a;
    std::string q = "'";
    for (char c : a) {
        if (c == '\'')
            q += "'\\''";
        else
            q += c;
    }
    q += '\'';
    return q;
}

std::string si(double v) {
    if (v >= 1e9)
        return fmt::format("{:.1f} G", v / 1e9);
    if (v >= 1e6)
        return fmt::format("{:.1f} M", v / 1e6);
    if (v >= 1e4)
        return fmt::format("{:.0f} k", v / 1e3);
    return fmt::format("{:.0f}", v);
}

std::string eta(double seconds) {
    if (seconds < 0 || seconds > 1e7)
        return "?";
    if (seconds < 60)
        return fmt::format("{:.0f} s", seconds);
    return fmt::format("{:.0f} min {:.0f} s", std::floor(seconds / 60),
                       seconds - 60 * std::floor(seconds / 60));
}

std::mutex g_print_mutex;

}  // namespace

void remember_command_line(int argc, char** argv) {
    g_command_line.clear();
    for (int i = 0; i < argc; ++i) {
        if (i > 0)
            g_command_line += ' ';
        g_command_line += quote(argv[i]);
    }
}

std::string command_line() { return g_command_line; }

std::string file_sha256(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in)
        return {};
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        return {};
    char buf[8192];
    while (in.read(buf, sizeof buf) || in.gcount() > 0)
        EVP_DigestUpdate(ctx.get(), buf, static_cast<std::size_t>(in.gcount()));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &n);
    std::string hex;
    for (unsigned int i = 0; i < n; ++i)
        hex += fmt::format("{:02x}", md[i]);
    return hex;
}

std::string wall_clock_now() {
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    return timers::to_iso8601(std::chrono::time_point_cast<timers::duration>(now));
}

std::string progress_text(const sim::progress& p, double elapsed) {
    const double rate = elapsed > 0 ? static_cast<double>(p.events) / elapsed : 0;
    const double remaining =
        p.fraction > 0.001 ? elapsed * (1 - p.fraction) / p.fraction : -1;
    return fmt::format(
        "simulated {} | {:5.1f} % done | {}/s events | ETA {} | 404s so far {} | deaf so far "
        "{:.1f} h",
        timers::to_iso8601(p.sim_now).substr(0, 10), 100.0 * p.fraction, si(rate), eta(remaining),
        si(static_cast<double>(p.responses_404)), static_cast<double>(p.deaf_ms) / 3.6e6);
}

std::function<void(const sim::progress&)> progress_printer(
    std::chrono::steady_clock::time_point start) {
    return [start](const sim::progress& p) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::string line = progress_text(p, elapsed);
        const std::lock_guard lock{g_print_mutex};
        // \r and "erase to end of line": the line is rewritten in place.
        std::fprintf(stderr, "\r  %s\x1b[K", line.c_str());
        std::fflush(stderr);
    };
}

void clear_progress_line() {
    const std::lock_guard lock{g_print_mutex};
    std::fprintf(stderr, "\r\x1b[K");
    std::fflush(stderr);
}

}  // namespace pkisim::cli
