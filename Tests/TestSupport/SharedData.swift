// Skipping tests whose inputs live outside the repository, with one line saying how to enable them.
import XCTest

extension XCTestCase {
    /// `<shared>/<sub>` (`../shared` or `$GLIDE_SHARED_DIR`), or an `XCTSkip` saying how to provide it.
    public func requireShared(_ sub: String) throws -> URL {
        let (url, reason) = TestPaths.sharedIfPresent(sub)
        guard let url else { throw XCTSkip(reason) }
        return url
    }
}
