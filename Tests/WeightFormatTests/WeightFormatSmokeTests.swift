import XCTest
@testable import WeightFormat

final class WeightFormatSmokeTests: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
