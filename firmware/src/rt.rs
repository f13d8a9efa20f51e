//! What both firmware binaries share: the instruction-count marker, memory figures, the
//! semihosting exit and the fault/panic handlers (every failure exits non-zero).

use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::debug;

/// The plugin's marker: never inlined, so its address is a stable breakpoint. Each region
/// sits between two calls; the QEMU plugin (`tools/qemu-insncount.c`) prints the running
/// instruction count at every call.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_mark(id: u32) {
    core::hint::black_box(id);
}

extern "C" {
    static __sidata: u32;
    static __sdata: u32;
    static __edata: u32;
    static __sbss: u32;
    static __ebss: u32;
    static _stack_start: u32;
    static _stack_end: u32;
}

fn addr(s: &'static u32) -> usize {
    s as *const u32 as usize
}

/// Flash and RAM use, in bytes.
pub struct Memory {
    /// `.text` + `.rodata` + `.data` initialisers.
    pub flash: usize,
    /// `.data` + `.bss`.
    pub statics: usize,
    /// Stack high-water mark (painted words overwritten).
    pub stack_used: usize,
    /// The stack region's size.
    pub stack_size: usize,
}

/// Reads [`Memory`] from the linker symbols and the painted stack (cortex-m-rt
/// `paint-stack`: every stack word is 0xCCCCCCCC at reset; flip-link puts the stack below
/// the statics, so an overflow faults instead of corrupting them).
pub fn memory() -> Memory {
    // SAFETY: only the addresses of linker symbols are taken; the stack words read lie in
    // [_stack_end, _stack_start), which the linker reserves for the stack and cortex-m-rt
    // painted with 0xCCCCCCCC at reset.
    unsafe {
        let sidata = addr(&__sidata);
        let data = addr(&__edata) - addr(&__sdata);
        let bss = addr(&__ebss) - addr(&__sbss);
        let (end, start) = (addr(&_stack_end), addr(&_stack_start));
        let mut p = end;
        while p < start && core::ptr::read_volatile(p as *const u32) == 0xCCCC_CCCC {
            p += 4;
        }
        Memory {
            flash: sidata + data,
            statics: data + bss,
            stack_used: start - p,
            stack_size: start - end,
        }
    }
}

/// Prints [`memory`].
pub fn report_memory() {
    let m = memory();
    defmt::println!("flash used: {=usize} bytes", m.flash);
    defmt::println!(
        "RAM: {=usize} bytes static, stack high-water {=usize} of {=usize} bytes",
        m.statics,
        m.stack_used,
        m.stack_size
    );
}

/// Exits QEMU through semihosting: status 0 if `ok`, else 1.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc={=u32:#010x}", ef.pc());
    exit(false)
}

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(false)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic");
    exit(false)
}
