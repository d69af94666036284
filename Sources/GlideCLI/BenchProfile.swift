// `glide bench step --profile`: the per-op profile of the timed steps (Kernels' KernelProfiler), as a table
// whose exclusive times add up to the measured step, and as JSON.
import Foundation
import Kernels

/// The kernel profile of `steps` model forwards that took `measuredSeconds` in all (on the profiler's clock).
struct StepProfile {
    var entries: [KernelProfileEntry]
    var steps: Int
    var measuredSeconds: Double
    var clock: String
    var threads: Int
    var kernelPath: String

    /// Where a kind's exclusive time is summed in the overview.
    static func group(of kind: String) -> String {
        if kind.hasPrefix("attention") { return "attention (scores, softmax, weighted sum, gathers)" }
        if kind.hasPrefix("conv2d") || ["winograd gemm", "winograd gemm+output", "gemm", "linear", "matmul"].contains(kind) {
            return "GEMM arithmetic (convolutions, linear layers)"
        }
        if kind.hasPrefix("winograd") { return "Winograd transforms (input, output, weights)" }
        switch kind {
        case "softmax": return "attention (scores, softmax, weighted sum, gathers)"
        case "group norm", "layer norm": return "normalization (+ scale-shift, SiLU)"
        default: return "element-wise, copies, resampling"
        }
    }
    static let packingGroup = "GEMM packing and im2col (activations)"
    static let weightPackingGroup = "GEMM packing (weights)"
    static let groupOrder = [
        "GEMM arithmetic (convolutions, linear layers)", packingGroup, weightPackingGroup,
        "Winograd transforms (input, output, weights)", "attention (scores, softmax, weighted sum, gathers)",
        "normalization (+ scale-shift, SiLU)", "element-wise, copies, resampling",
    ]

    var perStep: Double { measuredSeconds / Double(max(1, steps)) }
    var attributed: Double {
        entries.reduce(0) { $0 + $1.exclusiveSeconds + $1.packActivationSeconds + $1.packWeightSeconds }
            / Double(max(1, steps))
    }

    /// Per-step seconds per overview group, in `groupOrder`, then "unattributed".
    var groups: [(String, Double)] {
        var sums: [String: Double] = [:]
        for e in entries {
            sums[Self.group(of: e.kind), default: 0] += e.exclusiveSeconds
            sums[Self.packingGroup, default: 0] += e.packActivationSeconds
            sums[Self.weightPackingGroup, default: 0] += e.packWeightSeconds
        }
        let n = Double(max(1, steps))
        return Self.groupOrder.map { ($0, (sums[$0] ?? 0) / n) } + [("unattributed", perStep - attributed)]
    }

    /// Entry indices depth-first: top-level entries by inclusive time, each followed by its nested entries.
    var ordered: [(Int, Int)] {
        var children: [Int?: [Int]] = [:]
        for (i, e) in entries.enumerated() { children[e.parent, default: []].append(i) }
        var out: [(Int, Int)] = []
        func visit(_ parent: Int?, _ depth: Int) {
            let list = (children[parent] ?? []).sorted { entries[$0].inclusiveSeconds > entries[$1].inclusiveSeconds }
            for i in list { out.append((i, depth)); visit(i, depth + 1) }
        }
        visit(nil, 0)
        return out
    }

    var text: String {
        let n = Double(max(1, steps))
        let pct: (Double) -> String = { String(format: "%5.1f %%", 100 * $0 / max(self.perStep, 1e-12)) }
        var lines = [
            "per-op profile: \(steps) step(s), \(clock) clock, \(threads) thread(s), kernels \(kernelPath); per step: measured "
                + String(format: "%.3f s = attributed %.3f s + unattributed %.3f s", perStep, attributed,
                         perStep - attributed),
            "by group (seconds per step):",
        ]
        for (name, s) in groups {
            lines.append("  " + padded(name, 52) + String(format: " %8.3f s  ", s) + pct(s))
        }
        lines.append("by op kind and shape (per step; incl = with nested regions, self = without them and "
                     + "without packing; pack = GEMM packing of activations + weights; % step = self + pack; "
                     + "GFLOP/s over incl):")
        lines.append("  " + padded("kind  shape", 72) + "  calls   incl ms   self ms   pack ms   % step   GFLOP/s")
        for (i, depth) in ordered {
            let e = entries[i]
            let label = String(repeating: "  ", count: depth) + e.kind + "  " + e.shape
            let pack = (e.packActivationSeconds + e.packWeightSeconds) / n
            let own = e.exclusiveSeconds / n + pack
            lines.append("  " + padded(label, 72) + String(format: " %6.1f %9.2f %9.2f %9.2f ",
                                Double(e.calls) / n, 1e3 * e.inclusiveSeconds / n, 1e3 * e.exclusiveSeconds / n, 1e3 * pack)
                         + pct(own) + (e.gflops.map { String(format: " %9.1f", $0) } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        let n = Double(max(1, steps))
        let f: (Double) -> String = { String(format: "%.6f", $0) }
        var out = "{\"clock\": \(quoted(clock)), \"threads\": \(threads), \"kernel_path\": \(quoted(kernelPath)), "
            + "\"steps\": \(steps), "
            + "\"measured_seconds_per_step\": \(f(perStep)), \"attributed_seconds_per_step\": \(f(attributed)), "
            + "\"unattributed_seconds_per_step\": \(f(perStep - attributed)),\n    \"groups\": {"
        out += groups.map { "\(quoted($0.0)): \(f($0.1))" }.joined(separator: ", ") + "},\n    \"ops\": [\n"
        out += ordered.map { (i, _) -> String in
            let e = entries[i]
            return "      {\"id\": \(i), \"parent\": \(e.parent.map(String.init) ?? "null"), "
                + "\"kind\": \(quoted(e.kind)), \"shape\": \(quoted(e.shape)), "
                + "\"calls_per_step\": \(f(Double(e.calls) / n)), \"inclusive_seconds\": \(f(e.inclusiveSeconds / n)), "
                + "\"self_seconds\": \(f(e.exclusiveSeconds / n)), "
                + "\"pack_activation_seconds\": \(f(e.packActivationSeconds / n)), "
                + "\"pack_weight_seconds\": \(f(e.packWeightSeconds / n)), "
                + "\"flops_per_step\": \(String(format: "%.0f", e.flops / n)), "
                + "\"gflops\": \(e.gflops.map { String(format: "%.2f", $0) } ?? "null")}"
        }.joined(separator: ",\n")
        return out + "\n    ]}"
    }

    private func padded(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    private func quoted(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }
}
