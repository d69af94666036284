import XCTest
@testable import NumpyIO

final class NumpyIOSmokeTests: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
