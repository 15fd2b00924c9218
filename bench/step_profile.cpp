// The C++ training step timed barrier by barrier: where a step's time goes on each thread, without Python.
//
//   cmake -S . -B build/profile -Dpybind11_DIR="$(python -m pybind11 --cmakedir)"
//   cmake --build build/profile --target step_profile
//   build/profile/step_profile [threads=2] [epochs=4] [rows=20000]
//
// To compare two source trees (commits or checkouts) in alternating runs: bench/compare_steps.py.
//
// Trains the paper's MNIST model (784-500-20, Bernoulli, analytic KL, L = 1, M = 100, Adam, float32) on
// random binary rows (a dense step's timing does not depend on the values) with the core built with
// AEVB_PROFILE_BARRIERS, which makes every Team barrier call the two functions below. The time from
// leaving one barrier to arriving at the next is a thread's work in that phase, the time inside is its
// wait. The first epoch and each epoch's first step are warm-up and not counted. The last line is a hash
// of the parameters: equal hashes mean bit-identical training, for checking that a change kept results.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "aevb/aevb.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Stamp {
    Clock::time_point arrive, leave;
};
struct alignas(64) ThreadStamps {  // one cache line per thread's vector, so recording adds no traffic
    std::vector<Stamp> at;         // one per barrier of the current epoch
};
std::vector<ThreadStamps> stamps;

// The barriers of one step of this model, in order, named by the phase each one closes.
const char* const kPhases[] = {
    "Adam; gather the minibatch, noise", "encoder 784 -> 500 forward",  "encoder sums, tanh, heads",
    "reparameterize",                    "decoder 20 -> 500 forward",   "decoder 500 -> 784 forward",
    "likelihood and its gradient",       "decoder 500 -> 784 backward", "decoder 20 -> 500 backward",
    "the heads' gradient",               "encoder heads backward",      "encoder 784 -> 500 backward, prior",
};
constexpr size_t kNamedPhases = sizeof(kPhases) / sizeof(kPhases[0]);

double microseconds(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

}  // namespace

namespace aevb {
void profile_barrier_arrive(int thread) { stamps[size_t(thread)].at.push_back({Clock::now(), {}}); }
void profile_barrier_leave(int thread) { stamps[size_t(thread)].at.back().leave = Clock::now(); }
}  // namespace aevb

int main(int argc, char** argv) {
    using namespace aevb;
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int epochs = argc > 2 ? std::atoi(argv[2]) : 4;
    const Index M = 100, n = argc > 3 ? std::atoi(argv[3]) / M * M : 20000, steps = n / M;
    if (threads < 1 || epochs < 2 || steps < 2) {
        std::fprintf(stderr, "usage: step_profile [threads >= 1] [epochs >= 2] [rows >= 200]\n");
        return 2;
    }
    const Layout layout(784, 20, {500}, Activation::tanh, Likelihood::bernoulli);
    Matrix<float> X(784, n);
    std::mt19937 rng(0);
    std::bernoulli_distribution pixel(0.3);
    for (Index i = 0; i < X.size(); ++i) X.data()[i] = pixel(rng) ? 1.0f : 0.0f;
    std::vector<float> params(size_t(layout.n_params)), state(2 * size_t(layout.n_params), 0.0f);
    init_params<float>(layout, 0, params.data());
    std::vector<int64_t> rows(static_cast<size_t>(n));
    for (Index i = 0; i < n; ++i) rows[size_t(i)] = i;
    TrainOptions options;
    options.n_threads = threads;
    options.n_total = double(n);
    const int team = training_threads(layout, M, 1, threads);
    stamps.assign(size_t(team), {});
    for (auto& s : stamps) s.at.reserve(size_t(steps) * 32);

    std::vector<double> busy(size_t(team) * 64, 0.0), wait(size_t(team) * 64, 0.0);
    size_t per_step = 0;
    int64_t step = 0;
    double seconds = 0.0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        for (auto& s : stamps) s.at.clear();
        const auto start = Clock::now();
        train_epoch<float>(layout, params.data(), state.data(), step, X, rows, uint64_t(epoch), options, {});
        const double s = std::chrono::duration<double>(Clock::now() - start).count();
        std::printf("epoch %d: %.0f datapoints/s\n", epoch, double(n) / s);
        if (epoch == 0 || team == 1) continue;
        seconds += s;
        const size_t barriers = stamps[0].at.size();
        per_step = barriers / size_t(steps);
        if (barriers == 0) {
            std::fprintf(stderr, "no barriers timed: OpenMP gave the team one thread (or the build has none)\n");
            return 1;
        }
        if (per_step > 64 || barriers != per_step * size_t(steps)) {
            std::fprintf(stderr, "%zu barriers in %lld steps: not a whole number per step\n", barriers,
                         static_cast<long long>(steps));
            return 1;
        }
        for (int t = 0; t < team; ++t) {
            const auto& st = stamps[size_t(t)].at;
            for (size_t k = per_step; k < st.size(); ++k) {
                busy[size_t(t) * 64 + k % per_step] += microseconds(st[k].arrive - st[k - 1].leave);
                wait[size_t(t) * 64 + k % per_step] += microseconds(st[k].leave - st[k].arrive);
            }
        }
    }
    if (team > 1) {
        const double counted = double((epochs - 1) * (steps - 1));
        std::printf("\n%d threads, %zu barriers per step; us per step (busy, then waiting at the barrier):\n",
                    team, per_step);
        std::vector<double> total(size_t(team), 0.0);
        for (size_t p = 0; p < per_step; ++p) {
            std::printf("%2zu %-38s", p, per_step == kNamedPhases ? kPhases[p] : "");
            for (int t = 0; t < team; ++t) {
                const size_t i = size_t(t) * 64 + p;
                std::printf("  %8.1f %6.1f", busy[i] / counted, wait[i] / counted);
                total[size_t(t)] += (busy[i] + wait[i]) / counted;
            }
            std::printf("\n");
        }
        std::printf("   %-38s", "step");
        for (int t = 0; t < team; ++t) std::printf("  %15.1f", total[size_t(t)]);
        std::printf("\n   %.0f datapoints/s over the epochs after the first\n", double((epochs - 1) * n) / seconds);
    } else {
        std::printf("one thread: no barriers to time\n");
    }
    uint64_t hash = 1469598103934665603ull;  // FNV-1a over the parameters' bytes
    for (float p : params) {
        uint32_t bits;
        std::memcpy(&bits, &p, sizeof bits);
        for (int b = 0; b < 4; ++b) hash = (hash ^ ((bits >> (8 * b)) & 0xFF)) * 1099511628211ull;
    }
    std::printf("parameter hash %016llx\n", static_cast<unsigned long long>(hash));
}
