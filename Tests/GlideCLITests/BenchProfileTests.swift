// `glide bench step --profile`: option checks and the report's arithmetic (exclusive times + remainder = step).
import Foundation
import XCTest
import Kernels
@testable import GlideCLI

final class BenchProfileTests: XCTestCase {
    func testCPUTimeNeedsProfileAndOneThread() {
        XCTAssertThrowsError(try BenchStep.parse(["--model", "m.glw", "--cpu-time"]))
        XCTAssertThrowsError(try BenchStep.parse(["--model", "m.glw", "--profile", "--cpu-time", "--threads", "2"]))
        XCTAssertNoThrow(try BenchStep.parse(["--model", "m.glw", "--profile", "--cpu-time", "--threads", "1"]))
        XCTAssertNoThrow(try BenchStep.parse(["--model", "m.glw", "--profile", "--json"]))
    }

    func testReportAddsUpAndParses() throws {
        func entry(_ kind: String, _ shape: String, parent: Int?, incl: Double, own: Double, pack: Double,
                   flops: Double = 0) -> KernelProfileEntry {
            KernelProfileEntry(kind: kind, shape: shape, parent: parent, calls: 2, inclusiveSeconds: incl,
                               exclusiveSeconds: own, packActivationSeconds: pack, packWeightSeconds: 0, flops: flops)
        }
        let entries = [
            entry("conv2d winograd", "3x3 s1 f32 8->8 2x8x8", parent: nil, incl: 1.0, own: 0.1, pack: 0, flops: 4e9),
            entry("winograd gemm", "16 x 8x8 . 8x32", parent: 0, incl: 0.6, own: 0.5, pack: 0.1),
            entry("winograd input transform", "8 ch 8x8", parent: 0, incl: 0.3, own: 0.3, pack: 0),
            entry("group \"norm\"", "2x8x64", parent: nil, incl: 0.4, own: 0.4, pack: 0),
        ]
        let profile = StepProfile(entries: entries, steps: 2, measuredSeconds: 3.0, clock: "wall", threads: 1,
                                  kernelPath: "scalar")
        XCTAssertEqual(profile.perStep, 1.5, accuracy: 1e-12)
        XCTAssertEqual(profile.attributed, 0.7, accuracy: 1e-12)
        let groups = Dictionary(uniqueKeysWithValues: profile.groups)
        XCTAssertEqual(groups["unattributed"]!, 0.8, accuracy: 1e-12)
        XCTAssertEqual(profile.groups.reduce(0) { $0 + $1.1 }, profile.perStep, accuracy: 1e-12)
        XCTAssertEqual(groups[StepProfile.packingGroup]!, 0.05, accuracy: 1e-12)
        // Nested entries follow their parent, largest first.
        XCTAssertEqual(profile.ordered.map(\.0), [0, 1, 2, 3])
        XCTAssertEqual(profile.ordered.map(\.1), [0, 1, 1, 0])
        XCTAssertTrue(profile.text.contains("unattributed"))
        XCTAssertTrue(profile.text.contains("4.0"))   // 4e9 flops / 1.0 s = 4.0 GFLOP/s
        let json = try JSONSerialization.jsonObject(with: Data(profile.json.utf8)) as? [String: Any]
        XCTAssertEqual((json?["ops"] as? [Any])?.count, 4)
        XCTAssertEqual(json?["kernel_path"] as? String, "scalar")
    }
}
