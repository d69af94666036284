// Progress lines on stderr for long conversions: bytes, rate, ETA. Silent when stderr is not a terminal.
import Foundation

/// Prints `phase  done / total  rate  ETA` on one self-overwriting stderr line, at most 5 times a second.
public final class ProgressReporter: @unchecked Sendable {
    private let enabled: Bool
    private var phase = ""
    private var phaseStart = Date()
    private var lastPrint = Date.distantPast
    private var printed = false

    /// Shows progress only when `quiet` is false and stderr is a terminal.
    public init(quiet: Bool) {
        enabled = !quiet && isatty(2) != 0
    }

    /// Reports `done` of `total` bytes in `phase`.
    public func update(_ phase: String, _ done: Int, _ total: Int) {
        guard enabled else { return }
        let now = Date()
        if phase != self.phase { self.phase = phase; phaseStart = now }
        guard now.timeIntervalSince(lastPrint) >= 0.2 || done == total else { return }
        lastPrint = now
        let elapsed = max(now.timeIntervalSince(phaseStart), 1e-3)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = String(format: "\r%-9@ %@ / %@  %@/s  ETA %@   ", phase as NSString, formatBytes(done) as NSString,
                          formatBytes(total) as NSString, formatBytes(Int(rate)) as NSString, formatSeconds(eta) as NSString)
        FileHandle.standardError.write(Data(line.utf8))
        printed = true
    }

    /// Ends the progress line.
    public func finish() {
        if printed { FileHandle.standardError.write(Data("\n".utf8)); printed = false }
    }
}

/// "1.54 GB", "512.0 MB", "17 KB", "12 B" (decimal units).
public func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
    if d >= 1e3 { return String(format: "%.0f KB", d / 1e3) }
    return "\(n) B"
}

private func formatSeconds(_ s: Double) -> String {
    if s >= 60 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
    return String(format: "%.0fs", s)
}
