// SlotLayout: the address ranges of one 64 GiB slot.
import ColoABI

/// The address ranges of one 64 GiB slot, as colo_abi.h lays them out.
public struct SlotLayout: Sendable, Equatable {
    /// The first address of the slot (COLO_SLOT_SIZE aligned).
    public let base: UInt64

    /// A slot starting at `base`, which must be COLO_SLOT_SIZE aligned.
    public init(base: UInt64) {
        precondition(base % COLO_SLOT_SIZE == 0, "slot base \(base) is not slot aligned")
        self.base = base
    }

    /// Where the program's lowest page is mapped.
    public var imageBase: UInt64 { base + COLO_IMAGE_OFFSET }
    /// Where the mmap area starts; the interpreter is mapped first there.
    public var mmapLow: UInt64 { base + COLO_MMAP_LO_OFFSET }
    /// Where the mmap area ends.
    public var mmapHigh: UInt64 { base + COLO_MMAP_HI_OFFSET }
    /// The (exclusive) top of the initial stack, just below the program.
    public var stackTop: UInt64 { base + COLO_STACK_TOP_OFFSET }
    /// The lowest address the stack may reach.
    public var stackLimit: UInt64 { base + COLO_STACK_LIMIT_OFFSET }
    /// The first address after the slot.
    public var end: UInt64 { base + COLO_SLOT_SIZE }
}
