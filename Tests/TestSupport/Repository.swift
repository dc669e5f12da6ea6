// Where the tests find the repository's own files: its root, and the release `ponder` binary that the
// command-line tests run (built by `swift build -c release`; absent under a plain `swift test`).

import Foundation

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
}
