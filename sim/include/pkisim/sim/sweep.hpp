// `--sweep KEY=VALUES`: the same fleet for several settings of one parameter, on a thread pool,
// and what the results say: which direction of the parameter is safer, the range of tested
// values that came out safe, and one recommended value (whose run the verdict then shows).
//
//   auto spec = parse_sweep("overlap=30..365").value();     // step 30 (default), 30 .. 365
//   auto sw = run_sweep(scenario, spec, run_options{}, 4).value();
//   fmt::print("{}", describe(sw.analysis, sw));           // "higher is safer: safe from 185"
//   if (sw.analysis.recommended) use(sw.points[*sw.analysis.recommended].value);
//
// A sweep too large for one machine: emit_jobs() writes one command line per point (GNU
// parallel, a Slurm array); each point run writes summary.json with its "sweep_point";
// merge_sweep() reads those summaries back into the same sweep_result, so the table, the plot and
// the recommendation are the same as for an in-process sweep.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"

namespace pkisim::sim {

struct sweep_spec {
    std::string key;                  // any --set key (overlap, auto-enroll, max-connections...)
    std::vector<std::string> values;  // as written to --set, in run order
    // For FROM..TO ranges: the step used and whether it was the default (printed).
    std::optional<double> step;
    bool default_step = false;
    std::string text;  // what the user typed
};

// "overlap=30,60,90", "auto-enroll=60..90" (default step), "overlap=30..390:30". Ranges always
// include both ends (the last step is shorter when TO - FROM is not a multiple of STEP). The
// default step is 1 for ranges up to 20 wide, else a round step giving at most about 12 values.
tl::expected<sweep_spec, std::string> parse_sweep(std::string_view text);
// "overlap=30..365: step 30 (the default; write 30..365:STEP to choose), 13 values: 30, 60, ..."
std::string describe(const sweep_spec& spec);

struct sweep_point {
    std::string value;
    sim_result result;
    std::string out_dir;  // where its report is (merged sweeps)
};

// Which way the parameter is safer, derived from the results (not assumed per parameter).
enum class safe_direction {
    none,       // no tested value is safe
    all,        // every tested value is safe
    higher,     // the safe values are the highest ones tested
    lower,      // the safe values are the lowest ones tested
    between,    // safe values only in the middle: lower and higher both fail
    mixed,      // safe and unsafe values alternate: not monotone at this resolution
    unordered,  // the values are not numbers: no direction
};
std::string_view to_string(safe_direction d);

struct sweep_analysis {
    safe_direction direction = safe_direction::none;
    // The contiguous run of safe tested values the recommendation comes from (indices into
    // points), in numeric order; for `mixed` the widest run.
    std::optional<std::size_t> safe_from;
    std::optional<std::size_t> safe_to;
    // The boundary: the safe value nearest to the unsafe ones (the least change that is safe).
    std::optional<std::size_t> boundary;
    // The safe value farthest from every unsafe value tested (the middle of a bounded run, the
    // far end of an open one): the most margin the sweep can show.
    std::optional<std::size_t> recommended;
};

struct sweep_result {
    std::string key;
    std::vector<sweep_point> points;  // in run order
    sweep_analysis analysis;
    std::optional<sweep_spec> spec;  // when known (not for merged summaries without a manifest)
};

sweep_analysis analyze_sweep(const std::vector<sweep_point>& points);
// The analysis in sentences: direction, safe range, boundary and recommended value.
std::string describe(const sweep_analysis& a, const sweep_result& s);

// Runs every value on `threads` worker threads; results do not depend on the thread count.
tl::expected<sweep_result, std::string> run_sweep(const scenario& base, const sweep_spec& spec,
                                                  const run_options& options, unsigned threads = 2);

// --emit-jobs DIR: DIR/jobs.txt (one shell command line per point) and DIR/sweep.json (the
// manifest). `command_prefix` is the point run without --sweep-point/--out (already quoted);
// each line appends `--sweep-point KEY=VALUE --out DIR/points/NN`. Returns the jobs file path.
tl::expected<std::string, std::string> emit_jobs(const std::string& dir, const sweep_spec& spec,
                                                 const std::string& command_prefix);

// The fields of a point's summary.json that the sweep table, plot and analysis use. Errors name
// the file.
tl::expected<sweep_point, std::string> sweep_point_from_summary(std::string_view json_text,
                                                                const std::string& path,
                                                                std::string* key);

// sweep-merge DIR...: every summary.json with a "sweep_point" under the folders (and the
// manifests' value order, when there are manifests). Missing points are an error that names them.
tl::expected<sweep_result, std::string> merge_sweep(const std::vector<std::string>& dirs);

// Quotes a word for a POSIX shell command line.
std::string shell_quote(std::string_view word);

}  // namespace pkisim::sim
