// swift-tools-version:6.0
// Ponder: GRPO reasoning trainer. Layers follow ../shared/DESIGN.md; dependencies point one way only:
// COpenBLAS, CKernels → Autograd → Model → Training → ponder, with Tasks beside Model and Runs below the CLI.
import PackageDescription

let package = Package(
    name: "Ponder",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ponder", targets: ["ponder"]),
        .library(name: "Autograd", targets: ["Autograd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // Only cblas.h is used at compile time. The library itself is opened with dlopen at first
        // use (Autograd/BLAS.swift), after the kernel has been chosen: OpenBLAS fixes its kernel in a
        // load-time constructor, so linking it would fix the kernel before main runs. That is also
        // why there is no `pkgConfig:` here: SwiftPM would add pkg-config's `-lopenblas` to every link.
        .systemLibrary(
            name: "COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Ponder's AVX-512 GEMM against a pre-packed weight (cached decoding); per-function target
        // attributes and a runtime CPU check, so the build runs on any x86-64 (and elsewhere it is a stub).
        .target(name: "CKernels"),
        // Foundation-only helpers every layer shares: seeded RNG and hashing, JSON text and values,
        // atomic and append-only files, nearest-name suggestions.
        .target(name: "Basics"),
        .target(
            name: "Autograd",
            dependencies: ["Basics", "COpenBLAS", "CKernels"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "Model",
            dependencies: ["Autograd"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // MPI, loaded with dlopen only when mpirun started the process (Training/Distributed.swift),
        // so neither the build nor a single-process run needs an MPI library: no link-time dependency.
        .target(name: "CMPIShim", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "Tasks", dependencies: ["Basics"]),
        .target(name: "Runs", dependencies: ["Basics"]),
        .target(
            name: "Training",
            dependencies: ["Autograd", "CMPIShim", "Model", "Tasks", "Runs", .product(name: "Yams", package: "Yams")],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "ponder",
            dependencies: [
                "Autograd", "Basics", "Model", "Tasks", "Training", "Runs",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Test support: the repository's root and release binary, and the Python interpreter of the
        // cross-checks against the peers' libraries.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "AutogradTests", dependencies: ["Autograd"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "TestSupport"]),
        .testTarget(name: "TasksTests", dependencies: ["Tasks", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "TestSupport"]),
        .testTarget(name: "RunsTests", dependencies: ["Runs", "TestSupport"], exclude: ["Golden"]),
        .testTarget(name: "FuzzTests", dependencies: ["Training", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
