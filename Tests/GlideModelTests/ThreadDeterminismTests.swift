// The whole UNet forward (attention, norms, convolutions, copies) gives the same bits for every thread count.
import XCTest
import Kernels
@testable import GlideModel

extension NetworkTests {
    func testForwardIsBitIdenticalAcrossThreadCounts() throws {
        let saved = KernelSettings.threadCount
        defer { KernelSettings.threadCount = saved }
        let model = try Text2ImUNet(path: try makeWeightFile("tiny_base"))
        let i = try inputs("tiny_base")
        var outputs: [FloatTensor] = []
        for threads in [1, 2, 3] {
            KernelSettings.threadCount = threads
            let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: 2)
            outputs.append(try model.forward(x: i.x, timesteps: i.timesteps, text: text))
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])
    }
}
