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
        // Both streams go to files, not pipes: a pipe that fills while its reader waits on the other stalls the binary.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outURL = folder.appendingPathComponent("stdout"), errURL = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outFile = try FileHandle(forWritingTo: outURL), errFile = try FileHandle(forWritingTo: errURL)
        defer { try? outFile.close(); try? errFile.close() }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.standardOutput = outFile
        p.standardError = errFile
        try p.run()
        p.waitUntilExit()
        let stdout = String(decoding: try Data(contentsOf: outURL), as: UTF8.self)
        let stderr = String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
        return (p.terminationStatus, stdout, stderr)
    }
}
