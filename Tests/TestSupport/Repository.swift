// Where the tests find the repository's own files: its root, and the release `ponder` binary that the
// command-line tests run (built by `swift build -c release`; absent under a plain `swift test`).

import Foundation
import XCTest

public enum Repository {
    /// The repository's root folder.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The release `ponder` binary, or nil when it has not been built.
    public static var ponderBinary: URL? {
        let binary = root.appendingPathComponent(".build/release/ponder")
        return FileManager.default.isExecutableFile(atPath: binary.path) ? binary : nil
    }

    /// Why a test that runs the binary skips without it.
    public static let noBinary = "no release ponder binary at \(root.path)/.build/release/ponder (swift build -c release)"

    /// Runs the release binary with `args` and waits: its exit status, stdout and stderr (skips the
    /// calling test when the binary has not been built).
    public static func ponder(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let binary = ponderBinary else { throw XCTSkip(noBinary) }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, stdout, stderr)
    }
}
