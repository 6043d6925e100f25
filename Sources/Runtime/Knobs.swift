// Knobs: an address space's sysctl-like settings, kept in its table.
import ColoABI
import Errors
import Switcher

/// The knobs of an address space, named as CheriBSD's sysctls.  They live in the
/// address-space table, so `colo sysctl` reads and sets them from outside and
/// the runtime sees changes at once.
public enum Knob: String, CaseIterable, Sendable {
    case opportunisticCoexecve = "kern.opportunistic_coexecve"
    case opportunisticCapv = "kern.opportunistic_capv"
    case allowColookup = "security.bsd.allow_colookup"
    case counregisterOnExit = "debug.counregister_on_exit"
    case colocationDebug = "debug.colocation_debug"

    var index: Int {
        switch self {
        case .opportunisticCoexecve: Int(COLO_KNOB_OPPORTUNISTIC_COEXECVE.rawValue)
        case .opportunisticCapv: Int(COLO_KNOB_OPPORTUNISTIC_CAPV.rawValue)
        case .allowColookup: Int(COLO_KNOB_ALLOW_COLOOKUP.rawValue)
        case .counregisterOnExit: Int(COLO_KNOB_COUNREGISTER_ON_EXIT.rawValue)
        case .colocationDebug: Int(COLO_KNOB_COLOCATION_DEBUG.rawValue)
        }
    }

    /// The value a new address space starts with.
    public var defaultValue: Int32 { self == .colocationDebug ? 0 : 1 }

    /// What the knob does, as `colo sysctl -d` prints it.
    public var summary: String {
        switch self {
        case .opportunisticCoexecve: "Try to colocate binaries on execve(2)"
        case .opportunisticCapv: "Inherit the capability vector by default"
        case .allowColookup: "Allow colookup(2); when 0 it returns ENOSYS"
        case .counregisterOnExit: "Remove dead conames on thread exit"
        case .colocationDebug: "Log switcher events (fast cocalls; see colo switcher-log)"
        }
    }
}

extension SpaceTable {
    /// The current value of a knob.
    public subscript(knob: Knob) -> Int32 {
        withUnsafeBytes(of: header.pointee.knobs) { $0.load(fromByteOffset: knob.index * 4, as: Int32.self) }
    }

    /// Set a knob (the table must be mapped writable: the runtime's own, or `openForUpdate`).
    public func set(_ knob: Knob, _ value: Int32) {
        withUnsafeMutableBytes(of: &header.pointee.knobs) { $0.storeBytes(of: value, toByteOffset: knob.index * 4, as: Int32.self) }
        if knob == .colocationDebug { colo_switch_log_knob(header, value != 0 ? 1 : 0) }   // the event log follows it
    }

    func setDefaultKnobs() {
        for k in Knob.allCases { set(k, k.defaultValue) }
    }
}
