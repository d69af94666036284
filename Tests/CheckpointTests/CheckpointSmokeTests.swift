import XCTest
@testable import Checkpoint

final class CheckpointSmokeTests: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
