// The one system-call table (colo_syscalls.def): complete, ordered, and every entry served.
import ColoABI
import Glibc
import GuestShim
import Switcher
import Testing
@testable import Observability
@testable import Runtime

@Suite struct SyscallTableTests {
    /// The C table, entry by entry.
    var table: [colo_syscall_desc] {
        var out = [colo_syscall_desc]()
        var i: UInt32 = 0
        while let d = colo_syscall_at(i) { out.append(d.pointee); i += 1 }
        return out
    }

    @Test func entriesAreOrderedUniqueAndInTheColocationRange() {
        let numbers = table.map(\.number)
        #expect(numbers.count == Int(COLO_SYSCALL_COUNT) && numbers.count > 10)
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count, "ascending, none twice: \(numbers)")
        #expect(numbers.allSatisfy { (1000...1999).contains($0) })
        #expect(table.allSatisfy { $0.nargs <= 6 })
        // The numbers C code uses come from the same lines.
        #expect(SyscallTable.name(Int32(COLO_SYS_coexecve)) == "coexecve")
        #expect(SyscallTable.name(Int32(COLO_SYS_exec)) == "colo_exec")
        #expect(SyscallTable.name(Int32(COLO_SYS_cocall_slow)) == "cocall_slow")
    }

    /// Adding a call is one line and its handler: a line without a handler, or a handler
    /// without a line, fails here.
    @Test func everyEntryHasAHandlerAndEveryHandlerAnEntry() {
        for (number, entry) in SyscallTable.entries {
            let byRuntime = !entry.servedInGuest && !entry.servedBySwitcher
            #expect((entry.handler != nil) == byRuntime, "\(entry.name) (\(number)): a handler exactly when the runtime serves it")
        }
        for number in SyscallTable.handlers.keys {
            let entry = SyscallTable.entries[number]
            #expect(entry != nil && entry?.servedInGuest == false && entry?.servedBySwitcher == false,
                    "a handler for \(number) without a runtime entry")
        }
        #expect(SyscallTable.entries.filter { $0.value.servedBySwitcher }.values.map(\.name) == ["copark"])
        // The calls served in the guest have their colo_do_<id> (sigsys.c expands the table
        // into its switch: a missing function does not link); here, that they are the exec calls.
        #expect(Set(SyscallTable.entries.filter { $0.value.servedInGuest }.values.map(\.name)) == ["coexecve", "coexecvec"])
    }

    /// The tracers' formats come from the argument kinds.
    @Test func argumentKindsDriveTheTracers() {
        #expect(colo_trace_path_arg(Int32(COLO_SYS_coexecve)) == 1 && colo_trace_argv_arg(Int32(COLO_SYS_coexecve)) == 2)
        #expect(colo_trace_path_arg(Int32(COLO_SYS_coregister)) == 0, "a name is shown as a string")
        #expect(colo_trace_path_arg(Int32(COLO_SYS_cogetpid)) == -1 && colo_trace_argv_arg(Int32(COLO_SYS_cogetpid)) == -1)
        #expect(Tracer.argCount[Int(COLO_SYS_cocall_slow)] == 5 && Tracer.argCount[Int(COLO_SYS_copark)] == 0)
        #expect(Tracer.execLike.contains(Int(COLO_SYS_coexecvec)) && !Tracer.execLike.contains(Int(COLO_SYS_exec)))
    }
}
