import XCTest
@testable import Converter

final class ConverterSmokeTests: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
