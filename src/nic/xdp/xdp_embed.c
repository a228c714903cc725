/*
 * Links the compiled XDP program (xdp_prog.bpf.o, built by the custom command in this folder's
 * CMakeLists.txt) into the library, so a port needs no file at run time.
 */
#ifndef XP_BPF_OBJ_PATH
#error "XP_BPF_OBJ_PATH must name the compiled xdp_prog.bpf.o"
#endif

__asm__(".pushsection .rodata\n"
	".balign 8\n"
	".globl xp_bpf_obj_start\n"
	".hidden xp_bpf_obj_start\n"
	"xp_bpf_obj_start:\n"
	".incbin \"" XP_BPF_OBJ_PATH "\"\n"
	".globl xp_bpf_obj_end\n"
	".hidden xp_bpf_obj_end\n"
	"xp_bpf_obj_end:\n"
	".popsection\n");
