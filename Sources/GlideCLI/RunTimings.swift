// `glide sample --timings`: where a whole run's wall and CPU time go (loading, hashing, text, each stage's
// steps, writing), so the part that is not the network's steps can be found and compared with `glide bench step`.
import Foundation
import GlideModel
import Kernels

/// Wall and process-CPU seconds of named phases and of every sampling step, printed as a table on stderr.
final class RunTimings {
    /// A named part of the run, or one stage's steps.
    struct Phase {
        var name: String
        var wall: Double
        var cpu: Double
        var count: Int = 1
        /// Per-call wall and CPU seconds (steps only: their medians are what `glide bench step` compares with).
        var callWalls: [Double] = []
        var calls: [Double] = []
    }

    private(set) var phases: [Phase] = []
    private let startWall: Double
    private let startCPU: Double
    private var markWall: Double
    private var markCPU: Double

    init() {
        startWall = monotonicSeconds()
        startCPU = processCPUSeconds()
        markWall = startWall
        markCPU = startCPU
    }

    /// Charges the time since the previous mark to `name` (phases with the same name add up).
    func mark(_ name: String) {
        let wall = monotonicSeconds(), cpu = processCPUSeconds()
        add(name, wall: wall - markWall, cpu: cpu - markCPU, isCall: false)
        markWall = wall
        markCPU = cpu
    }

    /// Charges the time since the previous mark to `name` as one call (a step).
    func markCall(_ name: String) {
        let wall = monotonicSeconds(), cpu = processCPUSeconds()
        add(name, wall: wall - markWall, cpu: cpu - markCPU, isCall: true)
        markWall = wall
        markCPU = cpu
    }

    private func add(_ name: String, wall: Double, cpu: Double, isCall: Bool) {
        if let i = phases.firstIndex(where: { $0.name == name }) {
            phases[i].wall += wall
            phases[i].cpu += cpu
            phases[i].count += 1
            if isCall { phases[i].callWalls.append(wall); phases[i].calls.append(cpu) }
        } else {
            phases.append(Phase(name: name, wall: wall, cpu: cpu, callWalls: isCall ? [wall] : [], calls: isCall ? [cpu] : []))
        }
    }

    /// The table: one line per phase (total wall, total CPU, count, median wall and CPU per call), then the whole run.
    func report(threads: Int) -> String {
        let totalWall = monotonicSeconds() - startWall, totalCPU = processCPUSeconds() - startCPU
        var lines = ["timings (\(threads) thread(s); CPU = the process's user + system time):",
                     "  phase                                      wall s     CPU s  calls  median per call: wall s, CPU s"]
        for p in phases {
            let median = p.calls.isEmpty ? ""
                : String(format: "%8.3f %8.3f", RunTimings.median(p.callWalls), RunTimings.median(p.calls))
            lines.append("  " + RunTimings.padded(p.name) + String(format: " %9.2f %9.2f %6d  ", p.wall, p.cpu, p.count) + median)
        }
        lines.append("  " + RunTimings.padded("whole run") + String(format: " %9.2f %9.2f", totalWall, totalCPU))
        return lines.joined(separator: "\n")
    }

    static func padded(_ name: String) -> String {
        name.count >= 40 ? name : name + String(repeating: " ", count: 40 - name.count)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
