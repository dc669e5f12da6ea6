import Autograd
import XCTest

final class BLASTests: XCTestCase {
    func testKernelChoiceFromCPUFeatures() {
        XCTAssertEqual(chooseOpenBLASCoreType(cpuFlags: ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]).coreType, "SkylakeX")
        XCTAssertEqual(chooseOpenBLASCoreType(cpuFlags: ["avx2", "fma", "avx512f"]).coreType, "Haswell")
        XCTAssertEqual(chooseOpenBLASCoreType(cpuFlags: ["avx2", "fma"]).coreType, "Haswell")
        XCTAssertNil(chooseOpenBLASCoreType(cpuFlags: ["sse4_2", "avx"]).coreType)
        XCTAssertNil(chooseOpenBLASCoreType(cpuFlags: []).coreType)
    }

    func testLoadedKernelIsTheOneChosen() {
        let info = BLAS.info
        if let requested = info.requested {
            // OpenBLAS reports the kernel it actually dispatches to; it must be the one we asked for.
            XCTAssertEqual(info.kernel.lowercased(), requested.lowercased(), "asked for \(requested), got \(info.kernel)")
        } else if let user = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            XCTAssertEqual(info.kernel.lowercased(), user.lowercased(), "the user's OPENBLAS_CORETYPE must win")
        }
        let flags = cpuFeatureFlags()
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
           ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) {
            XCTAssertEqual(info.kernel, "SkylakeX")
        }
        XCTAssertGreaterThan(info.threads, 0)
    }
}
