import Foundation
import TestSupport
import XCTest

/// A fresh empty folder under the temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-runs-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// The file's text, or "" when it does not exist.
func text(_ url: URL) -> String {
    FileManager.default.contents(atPath: url.path).map { String(decoding: $0, as: UTF8.self) } ?? ""
}

/// Compares `actual` with the committed golden file Tests/RunsTests/Golden/<name>. With
/// PONDER_UPDATE_GOLDEN=1 in the environment it rewrites the golden instead.
func assertGolden(_ actual: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let url = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent()
        .appendingPathComponent("Golden").appendingPathComponent(name)
    if ProcessInfo.processInfo.environment["PONDER_UPDATE_GOLDEN"] == "1" {
        try Data(actual.utf8).write(to: url)
        return
    }
    guard let data = FileManager.default.contents(atPath: url.path) else {
        return XCTFail("missing golden \(url.path); run with PONDER_UPDATE_GOLDEN=1", file: file, line: line)
    }
    let expected = String(decoding: data, as: UTF8.self)
    if actual != expected {
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let first = zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, e.count)
        XCTFail(
            "\(name) differs from its golden at line \(first + 1):\n got: \(first < a.count ? String(a[first]) : "<end>")\nwant: \(first < e.count ? String(e[first]) : "<end>")",
            file: file, line: line)
    }
}

/// Runs `script` with arguments under the first peer interpreter that imports `module`
/// (Tests/TestSupport); nil when none does.
func python(_ script: String, arguments: [String] = [], requiring module: String) throws -> String? {
    try PeerPython.find(importing: [module])?.run(script: script, arguments: arguments)
}
