import XCTest
@testable import GlideModel

final class GlideModelSmokeTests: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
