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

    /// `precision: auto` picks bf16 with AMX on any vendor, and with avx512_bf16 alone only on AMD (on an Intel
    /// core without AMX it measured half float32's rate); never without either unit.
    func testBF16IsFasterOnlyWithAMXOrOnAMD() {
        XCTAssertTrue(bf16IsFaster(amx: true, avx512bf16: true, amd: false))   // Sapphire Rapids and later
        XCTAssertTrue(bf16IsFaster(amx: false, avx512bf16: true, amd: true))   // Zen 4, Zen 5
        XCTAssertFalse(bf16IsFaster(amx: false, avx512bf16: true, amd: false)) // Cooper Lake, a Xeon with AMX hidden
        XCTAssertFalse(bf16IsFaster(amx: false, avx512bf16: false, amd: true)) // Zen 3 and older
        XCTAssertFalse(bf16IsFaster(amx: false, avx512bf16: false, amd: false))
    }

    /// /proc/cpuinfo's fields are read whole and trimmed: the flags hold a feature every x86-64 CPU has.
    func testCPUInfoFields() throws {
        try XCTSkipIf(cpuinfoField("flags") == nil, "no /proc/cpuinfo flags here")
        #if arch(x86_64)
        XCTAssertTrue(cpuFeatureFlags().contains("sse2"))
        XCTAssertNotNil(cpuinfoField("vendor_id"))
        #endif
        XCTAssertEqual(cpuinfoField("flags")?.hasPrefix(" "), false)
        XCTAssertNil(cpuinfoField("no such field"))
    }

    /// The CPU named beside figures: the model name, and on x86 its family and model numbers, read from fields
    /// matched whole ("model" is not "model name").
    func testCPUDescriptionNamesModelFamilyAndNumber() throws {
        guard let name = cpuinfoField("model name") else { throw XCTSkip("no model name in /proc/cpuinfo here") }
        XCTAssertTrue(cpuDescription().hasPrefix(name))
        #if arch(x86_64)
        let model = try XCTUnwrap(cpuinfoField("model"))
        XCTAssertNotNil(Int(model), "\"model\" read as \(model)")
        XCTAssertEqual(cpuDescription(), "\(name) (family \(cpuinfoField("cpu family")!) model \(model))")
        #endif
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
