"""One convolution at a time, PyTorch (oneDNN) against JAX (XLA:CPU): forward, input cotangent and kernel
cotangent of mnist-cnn's four 3x3 layers at batch 128, medians of 20 calls (BENCHMARKS.md, "Session 7").

    ~/.cache/netspec/bench/<venv>/bin/python bench/experiments/conv_ops.py
"""
import time, statistics, sys, os
os.environ.setdefault("OMP_WAIT_POLICY","PASSIVE")
import numpy as np, torch, jax, jax.numpy as jnp
torch.set_num_threads(2)
def tm(f, n=20):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
B=128
layers=[(1,32,28),(32,32,28),(32,64,14),(64,64,14)]
tot={}
for ci,co,hw in layers:
    fl=2*B*hw*hw*ci*co*9/1e9
    x=torch.randn(B,ci,hw,hw); w=torch.randn(co,ci,3,3); g=torch.randn(B,co,hw,hw)
    xl=x.contiguous(memory_format=torch.channels_last); gl=g.contiguous(memory_format=torch.channels_last)
    F=torch.nn.functional
    r={}
    with torch.no_grad():
        r['t_fwd']=tm(lambda: F.conv2d(x,w,padding=1))
        r['t_fwd_cl']=tm(lambda: F.conv2d(xl,w,padding=1))
        r['t_dx']=tm(lambda: torch.ops.aten.convolution_backward(g,x,w,None,[1,1],[1,1],[1,1],False,[0,0],1,[True,False,False]))
        r['t_dw']=tm(lambda: torch.ops.aten.convolution_backward(g,x,w,None,[1,1],[1,1],[1,1],False,[0,0],1,[False,True,False]))
    xj=jnp.asarray(x.permute(0,2,3,1).numpy()); wj=jnp.asarray(w.permute(2,3,1,0).numpy()); gj=jnp.asarray(g.permute(0,2,3,1).numpy())
    dn=('NHWC','HWIO','NHWC')
    conv=lambda a,b: jax.lax.conv_general_dilated(a,b,(1,1),'SAME',dimension_numbers=dn)
    fwd=jax.jit(conv)
    _,vjp=jax.vjp(conv,xj,wj)
    dx=jax.jit(lambda a,b,g: jax.vjp(lambda a: conv(a,b),a)[1](g)[0])
    dw=jax.jit(lambda a,b,g: jax.vjp(lambda b: conv(a,b),b)[1](g)[0])
    r['j_fwd']=tm(lambda: fwd(xj,wj).block_until_ready())
    r['j_dx']=tm(lambda: dx(xj,wj,gj).block_until_ready())
    r['j_dw']=tm(lambda: dw(xj,wj,gj).block_until_ready())
    print(f"{ci}->{co}@{hw} {fl:.2f}GF", " ".join(f"{k}={v:.2f}" for k,v in r.items()), flush=True)
    for k,v in r.items(): tot[k]=tot.get(k,0)+v
print("total", " ".join(f"{k}={v:.1f}" for k,v in tot.items()))
