// `glide verify FILE [--against SRC]`: is a .glw file intact, and is it what its source converts to?
import ArgumentParser
import Converter
import Foundation
import WeightFormat

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a .glw file's header and CRCs, optionally against the checkpoint it came from.",
        discussion: """
        Without --against: validates the header and tensor table and checks every tensor's CRC-32 and all \
        padding. With --against SRC (a torch checkpoint or another .glw file) it also compares every tensor: \
        f32 must be bit-exact, f16/bf16 must equal round-to-nearest-even of the source, and int8 must be \
        within half a quantization step of the source everywhere; for int8 it prints max-abs error, RMSE and \
        relative error per tensor and overall. Exit status: 0 sound, 1 damaged or different (or unreadable).

        Examples:
          glide verify base-int8.glw
          glide verify base-int8.glw --against models/base.pt
        """)

    @Argument(help: "The .glw file to check.")
    var file: String

    @Option(help: "The checkpoint (or .glw file) it was made from, to compare every tensor with.")
    var against: String?

    @Flag(help: "Print every tensor's comparison, not only int8 tensors and failures.")
    var all = false

    @Flag(help: "No progress output.")
    var quiet = false

    func run() throws {
        let progress = ProgressReporter(quiet: quiet)
        let report: VerificationReport
        do {
            report = try verifyGLW(path: file, against: against, progress: { progress.update($0, $1, $2) })
        } catch {
            progress.finish()
            failCommand("verify", error)
        }
        progress.finish()
        for f in report.checksumFailures { print("DAMAGED  \(f)") }
        if against != nil {
            let width = max(12, report.comparisons.map(\.name.count).max() ?? 0)
            var header = false
            for c in report.comparisons {
                let bad: String? = { if case let .mismatch(m) = c.outcome { return m }; return nil }()
                guard all || c.storedType == .int8 || bad != nil else { continue }
                if !header {
                    print("\("tensor".padding(toLength: width, withPad: " ", startingAt: 0))  stored  source  result     max-abs     rmse        rel-err")
                    header = true
                }
                let result = bad != nil ? "DIFFERENT" : (c.outcome == .exact ? "exact" : "in-bound")
                print(glwPad(c.name, width) + "  " + glwPad(c.storedType.description, 6) + "  " + glwPad(c.sourceType, 6) + "  " + glwPad(result, 9)
                      + String(format: "  %.4e  %.4e  %.4e", c.maxAbsError, c.rmse, c.relativeError))
                if let bad { print("    \(bad)") }
            }
            for n in report.missingFromFile { print("MISSING  '\(n)' is in the source but not in the file") }
            for n in report.missingFromSource { print("EXTRA    '\(n)' is in the file but not in the source") }
            let exact = report.comparisons.filter { $0.outcome == .exact }.count
            let bound = report.comparisons.filter { $0.outcome == .withinQuantizationBound }.count
            print("\(report.comparisons.count) tensors compared: \(exact) exact, \(bound) int8 within half a step, "
                + "\(report.comparisons.filter(\.isDifferent).count) different")
            if let m = report.int8MaxAbsError, let r = report.int8RMSE, let e = report.int8RelativeError {
                print(String(format: "int8 overall: max-abs %.4e  rmse %.4e  relative %.4e (%.3f%%)", m, r, e, e * 100))
            }
        }
        print(report.isSound ? "\(file): sound (\(report.tensorCount) tensors, all CRCs match)" : "\(file): NOT sound")
        if !report.isSound { throw ExitCode(1) }
    }
}

extension TensorComparison {
    var isDifferent: Bool { if case .mismatch = outcome { return true }; return false }
}
