"""Each op's example, generated from its first sample by gpugrad.ops.docs.write(); do not edit."""

EXAMPLES = {
    'abs': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.abs(x)\n'
        '>>> out\n'
        'tensor([[1.9   , 1.5364, 1.1727, 0.8091],\n'
        '        [0.4455, 0.0818, 0.2818, 0.6455],\n'
        "        [1.0091, 1.3727, 1.7364, 2.1   ]], device='cpu')"
    ),
    'activation_grad': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import activation_grad\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.tensor([217, 163])\n'
        ">>> out = activation_grad(x, y, name='relu')\n"
        '>>> out\n'
        'tensor([[-1.9   , -0.    , -0.    , -0.8091],\n'
        '        [-0.4455, -0.    ,  0.2818,  0.6455],\n'
        "        [ 1.0091,  1.3727,  0.    ,  0.    ]], device='cpu')"
    ),
    'add': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.add(x, y)\n'
        '>>> out\n'
        'tensor([[0.2, 0.2, 0.2, 0.2],\n'
        '        [0.2, 0.2, 0.2, 0.2],\n'
        "        [0.2, 0.2, 0.2, 0.2]], device='cpu')"
    ),
    'amax': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.amax(x)\n'
        '>>> out\n'
        "tensor(1.9, device='cpu')"
    ),
    'amin': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.amin(x)\n'
        '>>> out\n'
        "tensor(-2.1, device='cpu')"
    ),
    'argmax': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.argmax(x)\n'
        '>>> out\n'
        "tensor(11, device='cpu')"
    ),
    'argmin': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.argmin(x)\n'
        '>>> out\n'
        "tensor(0, device='cpu')"
    ),
    'argsort': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.argsort(x)\n'
        '>>> out\n'
        'tensor([[0, 1, 2, 3],\n'
        '        [0, 1, 2, 3],\n'
        "        [0, 1, 2, 3]], device='cpu')"
    ),
    'avg_pool2d': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import avg_pool2d\n'
        '>>> x = gg.linspace(-1.9, 2.1, 144).reshape(2, 3, 4, 6)\n'
        '>>> out = avg_pool2d(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False)\n'
        '>>> out.shape\n'
        'Size([2, 3, 2, 3])'
    ),
    'avg_pool2d_backward': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import avg_pool2d_backward\n'
        '>>> x = gg.linspace(-1.9, 2.1, 36).reshape(2, 3, 2, 3)\n'
        '>>> out = avg_pool2d_backward(x, input_shape=(2, 3, 4, 6), kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False)\n'
        '>>> out.shape\n'
        'Size([2, 3, 4, 6])'
    ),
    'batch_norm': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.nn_ops import batch_norm\n'
        '>>> x = gg.linspace(-1.9, 2.1, 15).reshape(5, 3)\n'
        '>>> y = gg.linspace(2.0, 0.5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 3)\n'
        '>>> out = batch_norm(x, y, z, eps=1e-05)\n'
        '>>> out.shape\n'
        'Size([5, 3])'
    ),
    'binary_cross_entropy': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.nn_ops import binary_cross_entropy\n'
        '>>> x = gg.linspace(0.05, 0.95, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(0.95, 0.05, 12).reshape(3, 4)\n'
        '>>> out = binary_cross_entropy(x, y)\n'
        '>>> out\n'
        'tensor([[2.8485, 1.7779, 1.2651, 0.9625],\n'
        '        [0.7857, 0.7032, 0.7032, 0.7857],\n'
        "        [0.9625, 1.2651, 1.7779, 2.8485]], device='cpu')"
    ),
    'broadcast_to': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.reduce import broadcast_to\n'
        '>>> x = gg.linspace(-1.9, 2.1, 3).reshape(3, 1)\n'
        '>>> out = broadcast_to(x, shape=(2, 3, 4))\n'
        '>>> out.shape\n'
        'Size([2, 3, 4])'
    ),
    'cast': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.elementwise import cast\n'
        '>>> x = gg.linspace(-1.9, 2.1, 6).reshape(2, 3)\n'
        '>>> out = cast(x, dtype=gg.float32)\n'
        '>>> out\n'
        'tensor([[-1.9, -1.1, -0.3],\n'
        "        [ 0.5,  1.3,  2.1]], device='cpu')"
    ),
    'cat': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.lstm import concatenate\n'
        '>>> x = gg.linspace(-1.9, 2.1, 6).reshape(2, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(4, 3)\n'
        '>>> out = concatenate(x, y, axis=0)\n'
        '>>> out.shape\n'
        'Size([6, 3])'
    ),
    'ceil': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.ceil(x)\n'
        '>>> out\n'
        'tensor([[-1., -1., -1., -0.],\n'
        '        [-0., -0.,  1.,  1.],\n'
        "        [ 2.,  2.,  2.,  3.]], device='cpu')"
    ),
    'clamp': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.clamp(x, min=-0.5, max=0.6)\n'
        '>>> out\n'
        'tensor([[-0.5   , -0.5   , -0.5   , -0.5   ],\n'
        '        [-0.5   , -0.2818,  0.0818,  0.4455],\n'
        "        [ 0.6   ,  0.6   ,  0.6   ,  0.6   ]], device='cpu')"
    ),
    'clone': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 6).reshape(2, 3)\n'
        '>>> out = gg.clone(x)\n'
        '>>> out\n'
        'tensor([[-1.9, -1.1, -0.3],\n'
        "        [ 0.5,  1.3,  2.1]], device='cpu')"
    ),
    'conv2d': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import conv2d\n'
        '>>> x = gg.linspace(-1.9, 2.1, 150).reshape(2, 3, 5, 5)\n'
        '>>> y = gg.linspace(2.1, -1.9, 108).reshape(4, 3, 3, 3)\n'
        '>>> out = conv2d(x, y, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)\n'
        '>>> out.shape\n'
        'Size([2, 4, 3, 3])'
    ),
    'conv2d_input_grad': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import conv2d_input_grad\n'
        '>>> x = gg.linspace(-1.9, 2.1, 72).reshape(2, 4, 3, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 108).reshape(4, 3, 3, 3)\n'
        '>>> out = conv2d_input_grad(x, y, input_shape=(2, 3, 5, 5), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)\n'
        '>>> out.shape\n'
        'Size([2, 3, 5, 5])'
    ),
    'conv2d_weight_grad': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import conv2d_weight_grad\n'
        '>>> x = gg.linspace(-1.9, 2.1, 150).reshape(2, 3, 5, 5)\n'
        '>>> y = gg.linspace(2.1, -1.9, 72).reshape(2, 4, 3, 3)\n'
        '>>> out = conv2d_weight_grad(x, y, weight_shape=(4, 3, 3, 3), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)\n'
        '>>> out.shape\n'
        'Size([4, 3, 3, 3])'
    ),
    'cos': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.cos(x)\n'
        '>>> out\n'
        'tensor([[-0.3233,  0.0344,  0.3876,  0.6902],\n'
        '        [ 0.9024,  0.9967,  0.9606,  0.7988],\n'
        "        [ 0.5326,  0.1968, -0.1648, -0.5048]], device='cpu')"
    ),
    'cross_entropy': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.nn_ops import cross_entropy\n'
        '>>> x = gg.linspace(-1.9, 2.1, 20).reshape(4, 5)\n'
        '>>> y = gg.tensor([4, 3, 2, 1])\n'
        '>>> out = cross_entropy(x, y)\n'
        '>>> out\n'
        "tensor(1.5481, device='cpu')"
    ),
    'cross_entropy_grad': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.nn_ops import cross_entropy_grad\n'
        '>>> x = gg.linspace(-1.9, 2.1, 20).reshape(4, 5)\n'
        '>>> y = gg.tensor([4, 3, 2, 1])\n'
        '>>> out = cross_entropy_grad(x, y)\n'
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'cumsum': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.cumsum(x, axis=1)\n'
        '>>> out\n'
        'tensor([[-1.9   , -3.4364, -4.6091, -5.4182],\n'
        '        [-0.4455, -0.5273, -0.2455,  0.4   ],\n'
        "        [ 1.0091,  2.3818,  4.1182,  6.2182]], device='cpu')"
    ),
    'div': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.div(x, y)\n'
        '>>> out\n'
        'tensor([[-0.9048, -0.8848, -0.8543, -0.8018],\n'
        '        [-0.6901, -0.2903, -3.4444, -1.449 ],\n'
        "        [-1.2472, -1.1705, -1.1302, -1.1053]], device='cpu')"
    ),
    'dropout': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.nn_ops import dropout\n'
        '>>> import numpy as np\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = dropout(x, p=0.5, mask=np.array([182, 13], dtype=np.uint8))\n'
        '>>> out\n'
        'tensor([[ 0.    , -3.0727, -2.3455,  0.    ],\n'
        '        [-0.8909, -0.1636,  0.    ,  1.2909],\n'
        "        [ 2.0182,  0.    ,  3.4727,  4.2   ]], device='cpu')"
    ),
    'einsum': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.linalg import einsum\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 20).reshape(4, 5)\n'
        ">>> out = einsum(x, y, equation='ij,jk->ik')\n"
        '>>> out.shape\n'
        'Size([3, 5])'
    ),
    'elu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import elu\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = elu(x)\n'
        '>>> out\n'
        'tensor([[-0.8504, -0.7848, -0.6905, -0.5547],\n'
        '        [-0.3595, -0.0786,  0.2818,  0.6455],\n'
        "        [ 1.0091,  1.3727,  1.7364,  2.1   ]], device='cpu')"
    ),
    'eq': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.tensor([[2, 1, 1, 0], [0, 0, 0, 0], [0, 2, 1, 2]])\n'
        '>>> y = gg.tensor([[2, 1, 1, 0], [0, 0, 0, 0], [0, 2, 1, 2]])\n'
        '>>> out = gg.eq(x, y)\n'
        '>>> out\n'
        'tensor([[ True,  True,  True,  True],\n'
        '        [ True,  True,  True,  True],\n'
        "        [ True,  True,  True,  True]], device='cpu')"
    ),
    'erf': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.erf(x)\n'
        '>>> out\n'
        'tensor([[-0.9928, -0.9702, -0.9028, -0.7475],\n'
        '        [-0.4713, -0.0921,  0.3098,  0.6387],\n'
        "        [ 0.8464,  0.9478,  0.9859,  0.997 ]], device='cpu')"
    ),
    'exp': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.exp(x)\n'
        '>>> out\n'
        'tensor([[0.1496, 0.2152, 0.3095, 0.4453],\n'
        '        [0.6405, 0.9214, 1.3255, 1.9069],\n'
        "        [2.7431, 3.9461, 5.6767, 8.1662]], device='cpu')"
    ),
    'expm1': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.expm1(x)\n'
        '>>> out\n'
        'tensor([[-0.8504, -0.7848, -0.6905, -0.5547],\n'
        '        [-0.3595, -0.0786,  0.3255,  0.9069],\n'
        "        [ 1.7431,  2.9461,  4.6767,  7.1662]], device='cpu')"
    ),
    'flip': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.shape import flip\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = flip(x, axis=(0,))\n'
        '>>> out\n'
        'tensor([[ 1.0091,  1.3727,  1.7364,  2.1   ],\n'
        '        [-0.4455, -0.0818,  0.2818,  0.6455],\n'
        "        [-1.9   , -1.5364, -1.1727, -0.8091]], device='cpu')"
    ),
    'floor': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.floor(x)\n'
        '>>> out\n'
        'tensor([[-2., -2., -2., -1.],\n'
        '        [-1., -1.,  0.,  0.],\n'
        "        [ 1.,  1.,  1.,  2.]], device='cpu')"
    ),
    'floor_divide': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.elementwise import floor_divide\n'
        '>>> x = gg.tensor([7, 6, 5])\n'
        '>>> y = gg.tensor([3, 2, 2])\n'
        '>>> out = floor_divide(x, y)\n'
        '>>> out\n'
        "tensor([2, 3, 2], device='cpu')"
    ),
    'fused_softmax': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.nn_ops import fused_softmax\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = fused_softmax(x)\n'
        '>>> out\n'
        'tensor([[0.1336, 0.1922, 0.2765, 0.3977],\n'
        '        [0.1336, 0.1922, 0.2765, 0.3977],\n'
        "        [0.1336, 0.1922, 0.2765, 0.3977]], device='cpu')"
    ),
    'gather': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import gather\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.tensor([[3, 2], [2, 1], [1, 0]])\n'
        '>>> out = gather(x, y, axis=1)\n'
        '>>> out\n'
        'tensor([[-0.8091, -1.1727],\n'
        '        [ 0.2818, -0.0818],\n'
        "        [ 1.3727,  1.0091]], device='cpu')"
    ),
    'ge': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.ge(x, y)\n'
        '>>> out\n'
        'tensor([[False, False, False, False],\n'
        '        [False, False,  True,  True],\n'
        "        [ True,  True,  True,  True]], device='cpu')"
    ),
    'gelu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import gelu\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gelu(x)\n'
        '>>> out\n'
        'tensor([[-0.0546, -0.0956, -0.1413, -0.1693],\n'
        '        [-0.1461, -0.0382,  0.1722,  0.4781],\n'
        "        [ 0.8512,  1.2562,  1.6647,  2.0625]], device='cpu')"
    ),
    'getitem': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import getitem\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = getitem(x, index=(1, slice(None, None, None)))\n'
        '>>> out\n'
        "tensor([-0.4455, -0.0818,  0.2818,  0.6455], device='cpu')"
    ),
    'gru_cell': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.recurrent import gru_cell\n'
        '>>> x = gg.linspace(-1.9, 2.1, 18).reshape(3, 6)\n'
        '>>> y = gg.linspace(2.1, -1.9, 6).reshape(3, 2)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 12).reshape(6, 2)\n'
        '>>> u = gg.linspace(2.1, -1.9, 6)\n'
        '>>> out = gru_cell(x, y, z, u)\n'
        '>>> out\n'
        'tensor([[-0.3927,  0.3406],\n'
        '        [ 0.1574, -0.3533],\n'
        "        [-1.0923, -1.4036]], device='cpu')"
    ),
    'gt': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.gt(x, y)\n'
        '>>> out\n'
        'tensor([[False, False, False, False],\n'
        '        [False, False,  True,  True],\n'
        "        [ True,  True,  True,  True]], device='cpu')"
    ),
    'index': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import take\n'
        '>>> import numpy as np\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = take(x, index=(np.array([0, 2, 0], dtype=np.int64),))\n'
        '>>> out\n'
        'tensor([[-1.9   , -1.5364, -1.1727, -0.8091],\n'
        '        [ 1.0091,  1.3727,  1.7364,  2.1   ],\n'
        "        [-1.9   , -1.5364, -1.1727, -0.8091]], device='cpu')"
    ),
    'index_add': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import index_add\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.tensor([3, 2, 2, 1, 1])\n'
        '>>> z = gg.linspace(-1.9, 2.1, 15).reshape(5, 3)\n'
        '>>> out = index_add(x, y, z, axis=0)\n'
        '>>> out\n'
        'tensor([[-1.9   , -1.5364, -1.1727],\n'
        '        [ 1.3909,  2.326 ,  3.261 ],\n'
        '        [-0.9468, -0.0117,  0.9234],\n'
        "        [-0.5273,  0.1221,  0.7714]], device='cpu')"
    ),
    'index_backward': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import index_backward\n'
        '>>> x = gg.linspace(-1.9, 2.1, 2)\n'
        '>>> out = index_backward(x, index=(1, slice(0, 2, None)), shape=(3, 4))\n'
        '>>> out\n'
        'tensor([[ 0. ,  0. ,  0. ,  0. ],\n'
        '        [-1.9,  2.1,  0. ,  0. ],\n'
        "        [ 0. ,  0. ,  0. ,  0. ]], device='cpu')"
    ),
    'index_put': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import index_put\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 4)\n'
        '>>> out = index_put(x, y, index=(1,))\n'
        '>>> out\n'
        'tensor([[-1.9   , -1.5364, -1.1727, -0.8091],\n'
        '        [ 2.1   ,  0.7667, -0.5667, -1.9   ],\n'
        "        [ 1.0091,  1.3727,  1.7364,  2.1   ]], device='cpu')"
    ),
    'index_select': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import index_select\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.tensor([3, 2, 2, 1, 1])\n'
        '>>> out = index_select(x, y, axis=0)\n'
        '>>> out.shape\n'
        'Size([5, 3])'
    ),
    'isfinite': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 3)\n'
        '>>> out = gg.isfinite(x)\n'
        '>>> out\n'
        "tensor([ True,  True,  True], device='cpu')"
    ),
    'isinf': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 3)\n'
        '>>> out = gg.isinf(x)\n'
        '>>> out\n'
        "tensor([False, False, False], device='cpu')"
    ),
    'isnan': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 3)\n'
        '>>> out = gg.isnan(x)\n'
        '>>> out\n'
        "tensor([False, False, False], device='cpu')"
    ),
    'layer_norm': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.nn_ops import layer_norm\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 4)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 4)\n'
        '>>> out = layer_norm(x, y, z, normalized_ndim=1, eps=1e-05)\n'
        '>>> out\n'
        'tensor([[-4.7174, -0.9095,  0.5133, -0.449 ],\n'
        '        [-4.7174, -0.9095,  0.5133, -0.449 ],\n'
        "        [-4.7174, -0.9095,  0.5133, -0.449 ]], device='cpu')"
    ),
    'le': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.le(x, y)\n'
        '>>> out\n'
        'tensor([[ True,  True,  True,  True],\n'
        '        [ True,  True, False, False],\n'
        "        [False, False, False, False]], device='cpu')"
    ),
    'leaky_relu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import leaky_relu\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = leaky_relu(x)\n'
        '>>> out\n'
        'tensor([[-1.9000e-02, -1.5364e-02, -1.1727e-02, -8.0909e-03],\n'
        '        [-4.4545e-03, -8.1818e-04,  2.8182e-01,  6.4545e-01],\n'
        "        [ 1.0091e+00,  1.3727e+00,  1.7364e+00,  2.1000e+00]], device='cpu')"
    ),
    'linear': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_elu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear_elu'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_gelu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear_gelu'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_gelu_tanh': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear_gelu_tanh'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_leaky_relu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear_leaky_relu'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_mish': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear_mish'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_relu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import linear_relu\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        '>>> out = linear_relu(x, y, z)\n'
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_sigmoid': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-0.9, 0.8, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(0.8, -0.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-0.9, 0.8, 5)\n'
        ">>> out = OPS['linear_sigmoid'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_silu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear_silu'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_softplus': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 5)\n'
        ">>> out = OPS['linear_softplus'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'linear_tanh': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-0.9, 0.8, 12).reshape(4, 3)\n'
        '>>> y = gg.linspace(0.8, -0.9, 15).reshape(5, 3)\n'
        '>>> z = gg.linspace(-0.9, 0.8, 5)\n'
        ">>> out = OPS['linear_tanh'].function(x, y, z)\n"
        '>>> out.shape\n'
        'Size([4, 5])'
    ),
    'log': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(0.5, 2.0, 12).reshape(3, 4)\n'
        '>>> out = gg.log(x)\n'
        '>>> out\n'
        'tensor([[-0.6931, -0.452 , -0.2578, -0.0953],\n'
        '        [ 0.0445,  0.1671,  0.2763,  0.3747],\n'
        "        [ 0.4643,  0.5465,  0.6225,  0.6931]], device='cpu')"
    ),
    'log1p': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(0.5, 2.0, 12).reshape(3, 4)\n'
        '>>> out = gg.log1p(x)\n'
        '>>> out\n'
        'tensor([[0.4055, 0.4925, 0.5725, 0.6466],\n'
        '        [0.7156, 0.7802, 0.8408, 0.8979],\n'
        "        [0.952 , 1.0033, 1.0521, 1.0986]], device='cpu')"
    ),
    'logical_and': (
        '>>> import gpugrad as gg\n'
        '>>> x = (gg.arange(3) % 3 != 0)\n'
        '>>> y = (gg.arange(3) % 3 != 0)\n'
        '>>> out = gg.logical_and(x, y)\n'
        '>>> out\n'
        "tensor([False,  True,  True], device='cpu')"
    ),
    'logical_not': (
        '>>> import gpugrad as gg\n'
        '>>> x = (gg.arange(3) % 3 != 0)\n'
        '>>> out = gg.logical_not(x)\n'
        '>>> out\n'
        "tensor([ True, False, False], device='cpu')"
    ),
    'logical_or': (
        '>>> import gpugrad as gg\n'
        '>>> x = (gg.arange(3) % 3 != 0)\n'
        '>>> y = (gg.arange(3) % 3 != 0)\n'
        '>>> out = gg.logical_or(x, y)\n'
        '>>> out\n'
        "tensor([False,  True,  True], device='cpu')"
    ),
    'logical_xor': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.elementwise import logical_xor\n'
        '>>> x = (gg.arange(3) % 3 != 0)\n'
        '>>> y = (gg.arange(3) % 3 != 0)\n'
        '>>> out = logical_xor(x, y)\n'
        '>>> out\n'
        "tensor([False, False, False], device='cpu')"
    ),
    'logsumexp': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.logsumexp(x)\n'
        '>>> out\n'
        "tensor(3.2751, device='cpu')"
    ),
    'lstm_cell': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.lstm import lstm_cell\n'
        '>>> x = gg.linspace(-1.9, 2.1, 24).reshape(3, 8)\n'
        '>>> y = gg.linspace(2.1, -1.9, 6).reshape(3, 2)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 6).reshape(3, 2)\n'
        '>>> u = gg.linspace(2.1, -1.9, 16).reshape(8, 2)\n'
        '>>> v = gg.linspace(-1.9, 2.1, 8)\n'
        '>>> out = lstm_cell(x, y, z, u, v)\n'
        '>>> out\n'
        'tensor([[-0.031 , -0.0098, -2.1493, -1.3492],\n'
        '        [-0.0268,  0.3832, -0.0307,  0.439 ],\n'
        "        [ 0.1394,  0.8271,  0.1404,  1.1792]], device='cpu')"
    ),
    'lt': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.lt(x, y)\n'
        '>>> out\n'
        'tensor([[ True,  True,  True,  True],\n'
        '        [ True,  True, False, False],\n'
        "        [False, False, False, False]], device='cpu')"
    ),
    'masked_fill': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = (gg.arange(12) % 3 != 0).reshape(3, 4)\n'
        '>>> out = gg.masked_fill(x, y, value=-1.5)\n'
        '>>> out\n'
        'tensor([[-1.9   , -1.5   , -1.5   , -0.8091],\n'
        '        [-1.5   , -1.5   ,  0.2818, -1.5   ],\n'
        "        [-1.5   ,  1.3727, -1.5   , -1.5   ]], device='cpu')"
    ),
    'matmul': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 20).reshape(4, 5)\n'
        '>>> out = gg.matmul(x, y)\n'
        '>>> out.shape\n'
        'Size([3, 5])'
    ),
    'max_pool2d': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import max_pool2d\n'
        '>>> x = gg.linspace(-2.1, 1.9, 144).reshape(2, 3, 4, 6)\n'
        '>>> out = max_pool2d(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)\n'
        '>>> out.shape\n'
        'Size([2, 3, 2, 3])'
    ),
    'max_pool2d_gather': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import max_pool2d_gather\n'
        '>>> x = gg.linspace(-1.9, 2.1, 144).reshape(2, 3, 4, 6)\n'
        '>>> y = gg.tensor([[[[3, 2, 2], [1, 1, 0]], [[0, 0, 0], [3, 2, 3]], [[2, 2, 3], [2, 2, 2]]], [[[2, 3, 1], [3, 2, 0]], [[1, 3, 2], [0, 3, 2]], [[3, 0, 0], [3, 0, 2]]]])\n'
        '>>> out = max_pool2d_gather(x, y, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)\n'
        '>>> out.shape\n'
        'Size([2, 3, 2, 3])'
    ),
    'max_pool2d_scatter': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.conv import max_pool2d_scatter\n'
        '>>> x = gg.linspace(-1.9, 2.1, 36).reshape(2, 3, 2, 3)\n'
        '>>> y = gg.tensor([[[[3, 2, 2], [1, 1, 0]], [[0, 0, 0], [3, 2, 3]], [[2, 2, 3], [2, 2, 2]]], [[[2, 3, 1], [3, 2, 0]], [[1, 3, 2], [0, 3, 2]], [[3, 0, 0], [3, 0, 2]]]])\n'
        '>>> out = max_pool2d_scatter(x, y, input_shape=(2, 3, 4, 6), kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)\n'
        '>>> out.shape\n'
        'Size([2, 3, 4, 6])'
    ),
    'maximum': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(1.9, -2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.maximum(x, y)\n'
        '>>> out\n'
        'tensor([[1.9   , 1.5364, 1.1727, 0.8091],\n'
        '        [0.4455, 0.0818, 0.0818, 0.4455],\n'
        "        [0.8091, 1.1727, 1.5364, 1.9   ]], device='cpu')"
    ),
    'mean': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.mean(x)\n'
        '>>> out\n'
        "tensor(0.1, device='cpu')"
    ),
    'minimum': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-2.1, 1.9, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(1.9, -2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.minimum(x, y)\n'
        '>>> out\n'
        'tensor([[-2.1   , -1.7364, -1.3727, -1.0091],\n'
        '        [-0.6455, -0.2818, -0.2818, -0.6455],\n'
        "        [-1.0091, -1.3727, -1.7364, -2.1   ]], device='cpu')"
    ),
    'mish': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import mish\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = mish(x)\n'
        '>>> out\n'
        'tensor([[-0.2631, -0.2957, -0.3088, -0.2852],\n'
        '        [-0.2041, -0.0469,  0.1939,  0.5088],\n'
        "        [ 0.8746,  1.2649,  1.6602,  2.0506]], device='cpu')"
    ),
    'mul': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.mul(x, y)\n'
        '>>> out\n'
        'tensor([[-3.99  , -2.6677, -1.6098, -0.8164],\n'
        '        [-0.2875, -0.0231, -0.0231, -0.2875],\n'
        "        [-0.8164, -1.6098, -2.6677, -3.99  ]], device='cpu')"
    ),
    'nan_to_num': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.nan_to_num(x, nan=0.0, posinf=None, neginf=None)\n'
        '>>> out\n'
        'tensor([[-1.9   , -1.5364, -1.1727, -0.8091],\n'
        '        [-0.4455, -0.0818,  0.2818,  0.6455],\n'
        "        [ 1.0091,  1.3727,  1.7364,  2.1   ]], device='cpu')"
    ),
    'ne': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.tensor([[2, 1, 1, 0], [0, 0, 0, 0], [0, 2, 1, 2]])\n'
        '>>> y = gg.tensor([[2, 1, 1, 0], [0, 0, 0, 0], [0, 2, 1, 2]])\n'
        '>>> out = gg.ne(x, y)\n'
        '>>> out\n'
        'tensor([[False, False, False, False],\n'
        '        [False, False, False, False],\n'
        "        [False, False, False, False]], device='cpu')"
    ),
    'neg': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.neg(x)\n'
        '>>> out\n'
        'tensor([[ 1.9   ,  1.5364,  1.1727,  0.8091],\n'
        '        [ 0.4455,  0.0818, -0.2818, -0.6455],\n'
        "        [-1.0091, -1.3727, -1.7364, -2.1   ]], device='cpu')"
    ),
    'norm': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.norm(x)\n'
        '>>> out\n'
        "tensor(4.3622, device='cpu')"
    ),
    'pad': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.shape import pad_constant\n'
        '>>> x = gg.linspace(-1.9, 2.1, 6).reshape(2, 3)\n'
        '>>> out = pad_constant(x, pad_width=((1, 0), (2, 1)))\n'
        '>>> out.shape\n'
        'Size([3, 6])'
    ),
    'permute': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.shape import permute\n'
        '>>> x = gg.linspace(-1.9, 2.1, 24).reshape(2, 3, 4)\n'
        '>>> out = permute(x, axes=(2, 0, 1))\n'
        '>>> out.shape\n'
        'Size([4, 2, 3])'
    ),
    'pow': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(0.5, 2.0, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.pow(x, y)\n'
        '>>> out\n'
        'tensor([[0.2333, 0.4562, 0.7019, 0.9083],\n'
        '        [1.0291, 1.0482, 0.9777, 0.8463],\n'
        "        [0.6868, 0.5268, 0.3843, 0.2679]], device='cpu')"
    ),
    'prod': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.prod(x)\n'
        '>>> out\n'
        "tensor(0.0927, device='cpu')"
    ),
    'relu': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.relu(x)\n'
        '>>> out\n'
        'tensor([[0.    , 0.    , 0.    , 0.    ],\n'
        '        [0.    , 0.    , 0.2818, 0.6455],\n'
        "        [1.0091, 1.3727, 1.7364, 2.1   ]], device='cpu')"
    ),
    'remainder': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.elementwise import remainder\n'
        '>>> x = gg.linspace(0.5, 2.0, 12).reshape(3, 4)\n'
        '>>> out = remainder(x, 0.3)\n'
        '>>> out\n'
        'tensor([[0.2   , 0.0364, 0.1727, 0.0091],\n'
        '        [0.1455, 0.2818, 0.1182, 0.2545],\n'
        "        [0.0909, 0.2273, 0.0636, 0.2   ]], device='cpu')"
    ),
    'repeat': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.shape import tile\n'
        '>>> x = gg.linspace(-1.9, 2.1, 6).reshape(2, 3)\n'
        '>>> out = tile(x, reps=(2, 1))\n'
        '>>> out\n'
        'tensor([[-1.9, -1.1, -0.3],\n'
        '        [ 0.5,  1.3,  2.1],\n'
        '        [-1.9, -1.1, -0.3],\n'
        "        [ 0.5,  1.3,  2.1]], device='cpu')"
    ),
    'reshape': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import reshape\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = reshape(x, shape=(4, 3))\n'
        '>>> out\n'
        'tensor([[-1.9   , -1.5364, -1.1727],\n'
        '        [-0.8091, -0.4455, -0.0818],\n'
        '        [ 0.2818,  0.6455,  1.0091],\n'
        "        [ 1.3727,  1.7364,  2.1   ]], device='cpu')"
    ),
    'roll': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        ">>> out = OPS['roll'].function(x, shifts=1, axis=1)\n"
        '>>> out\n'
        'tensor([[-0.8091, -1.9   , -1.5364, -1.1727],\n'
        '        [ 0.6455, -0.4455, -0.0818,  0.2818],\n'
        "        [ 2.1   ,  1.0091,  1.3727,  1.7364]], device='cpu')"
    ),
    'round': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.elementwise import round_half_even\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = round_half_even(x)\n'
        '>>> out\n'
        'tensor([[-2., -2., -1., -1.],\n'
        '        [-0., -0.,  0.,  1.],\n'
        "        [ 1.,  1.,  2.,  2.]], device='cpu')"
    ),
    'scatter': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.tensor([[2, 0], [3, 2], [1, 3]])\n'
        '>>> z = gg.linspace(-1.9, 2.1, 6).reshape(3, 2)\n'
        ">>> out = OPS['scatter'].function(x, y, z, axis=1)\n"
        '>>> out\n'
        'tensor([[-1.1   , -1.5364, -1.9   , -0.8091],\n'
        '        [-0.4455, -0.0818,  0.5   , -0.3   ],\n'
        "        [ 1.0091,  1.3   ,  1.7364,  2.1   ]], device='cpu')"
    ),
    'scatter_add': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.index import scatter_add\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.tensor([[3, 2], [2, 1], [1, 0]])\n'
        '>>> z = gg.linspace(-1.9, 2.1, 6).reshape(3, 2)\n'
        '>>> out = scatter_add(x, y, z, axis=1)\n'
        '>>> out\n'
        'tensor([[-1.9   , -1.5364, -2.2727, -2.7091],\n'
        '        [-0.4455,  0.4182, -0.0182,  0.6455],\n'
        "        [ 3.1091,  2.6727,  1.7364,  2.1   ]], device='cpu')"
    ),
    'scatter_value': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops import OPS\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.tensor([[3, 2], [2, 1], [1, 0]])\n'
        ">>> out = OPS['scatter_value'].function(x, y, value=2.5, axis=1)\n"
        '>>> out\n'
        'tensor([[-1.9   , -1.5364,  2.5   ,  2.5   ],\n'
        '        [-0.4455,  2.5   ,  2.5   ,  0.6455],\n'
        "        [ 2.5   ,  2.5   ,  1.7364,  2.1   ]], device='cpu')"
    ),
    'sigmoid': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.sigmoid(x)\n'
        '>>> out\n'
        'tensor([[0.1301, 0.1771, 0.2364, 0.3081],\n'
        '        [0.3904, 0.4796, 0.57  , 0.656 ],\n'
        "        [0.7328, 0.7978, 0.8502, 0.8909]], device='cpu')"
    ),
    'sign': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.sign(x)\n'
        '>>> out\n'
        'tensor([[-1., -1., -1., -1.],\n'
        '        [-1., -1.,  1.,  1.],\n'
        "        [ 1.,  1.,  1.,  1.]], device='cpu')"
    ),
    'silu': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import silu\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = silu(x)\n'
        '>>> out\n'
        'tensor([[-0.2472, -0.272 , -0.2772, -0.2493],\n'
        '        [-0.1739, -0.0392,  0.1606,  0.4234],\n'
        "        [ 0.7395,  1.0952,  1.4763,  1.8709]], device='cpu')"
    ),
    'sin': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.sin(x)\n'
        '>>> out\n'
        'tensor([[-0.9463, -0.9994, -0.9218, -0.7237],\n'
        '        [-0.4309, -0.0817,  0.2781,  0.6016],\n'
        "        [ 0.8463,  0.9804,  0.9863,  0.8632]], device='cpu')"
    ),
    'softplus': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.activation import softplus\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = softplus(x)\n'
        '>>> out\n'
        'tensor([[0.1394, 0.1949, 0.2697, 0.3683],\n'
        '        [0.495 , 0.6531, 0.844 , 1.0671],\n'
        "        [1.3199, 1.5986, 1.8986, 2.2155]], device='cpu')"
    ),
    'sqrt': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(0.5, 2.0, 12).reshape(3, 4)\n'
        '>>> out = gg.sqrt(x)\n'
        '>>> out\n'
        'tensor([[0.7071, 0.7977, 0.879 , 0.9535],\n'
        '        [1.0225, 1.0871, 1.1481, 1.206 ],\n'
        "        [1.2613, 1.3143, 1.3652, 1.4142]], device='cpu')"
    ),
    'squeeze': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 1, 4, 1)\n'
        '>>> out = gg.squeeze(x, axis=(1,))\n'
        '>>> out\n'
        'tensor([[[-1.9   ],\n'
        '         [-1.5364],\n'
        '         [-1.1727],\n'
        '         [-0.8091]],\n'
        '<BLANKLINE>\n'
        '        [[-0.4455],\n'
        '         [-0.0818],\n'
        '         [ 0.2818],\n'
        '         [ 0.6455]],\n'
        '<BLANKLINE>\n'
        '        [[ 1.0091],\n'
        '         [ 1.3727],\n'
        '         [ 1.7364],\n'
        "         [ 2.1   ]]], device='cpu')"
    ),
    'stack': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.shape import stack\n'
        '>>> x = gg.linspace(-1.9, 2.1, 6).reshape(2, 3)\n'
        '>>> y = gg.linspace(2.1, -1.9, 6).reshape(2, 3)\n'
        '>>> out = stack(x, y, axis=0)\n'
        '>>> out\n'
        'tensor([[[-1.9, -1.1, -0.3],\n'
        '         [ 0.5,  1.3,  2.1]],\n'
        '<BLANKLINE>\n'
        '        [[ 2.1,  1.3,  0.5],\n'
        "         [-0.3, -1.1, -1.9]]], device='cpu')"
    ),
    'sub': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> out = gg.sub(x, y)\n'
        '>>> out\n'
        'tensor([[-4.    , -3.2727, -2.5455, -1.8182],\n'
        '        [-1.0909, -0.3636,  0.3636,  1.0909],\n'
        "        [ 1.8182,  2.5455,  3.2727,  4.    ]], device='cpu')"
    ),
    'sum': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.sum(x)\n'
        '>>> out\n'
        "tensor(1.2, device='cpu')"
    ),
    'sum_to': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.reduce import sum_to\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = sum_to(x, shape=(4,))\n'
        '>>> out\n'
        "tensor([-1.3364, -0.2455,  0.8455,  1.9364], device='cpu')"
    ),
    'tan': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-0.9, 0.8, 12).reshape(3, 4)\n'
        '>>> out = gg.tan(x)\n'
        '>>> out\n'
        'tensor([[-1.2602, -0.9231, -0.6709, -0.4663],\n'
        '        [-0.2895, -0.128 ,  0.0273,  0.1838],\n'
        "        [ 0.3497,  0.5346,  0.7531,  1.0296]], device='cpu')"
    ),
    'tanh': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.tanh(x)\n'
        '>>> out\n'
        'tensor([[-0.9562, -0.9115, -0.8251, -0.6691],\n'
        '        [-0.4182, -0.0816,  0.2746,  0.5686],\n'
        "        [ 0.7654,  0.8793,  0.9398,  0.9705]], device='cpu')"
    ),
    'to_device': (
        '>>> import gpugrad as gg\n'
        '>>> from gpugrad.ops.methods import transfer\n'
        '>>> x = gg.linspace(-1.9, 2.1, 6).reshape(2, 3)\n'
        ">>> out = transfer(x, device=gg.device('cpu'))\n"
        '>>> out\n'
        'tensor([[-1.9, -1.1, -0.3],\n'
        "        [ 0.5,  1.3,  2.1]], device='cpu')"
    ),
    'tril': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 16).reshape(4, 4)\n'
        '>>> out = gg.tril(x)\n'
        '>>> out.shape\n'
        'Size([4, 4])'
    ),
    'triu': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 16).reshape(4, 4)\n'
        '>>> out = gg.triu(x)\n'
        '>>> out.shape\n'
        'Size([4, 4])'
    ),
    'unsqueeze': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.unsqueeze(x, axis=1)\n'
        '>>> out\n'
        'tensor([[[-1.9   , -1.5364, -1.1727, -0.8091]],\n'
        '<BLANKLINE>\n'
        '        [[-0.4455, -0.0818,  0.2818,  0.6455]],\n'
        '<BLANKLINE>\n'
        "        [[ 1.0091,  1.3727,  1.7364,  2.1   ]]], device='cpu')"
    ),
    'var': (
        '>>> import gpugrad as gg\n'
        '>>> x = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.var(x)\n'
        '>>> out\n'
        "tensor(1.719, device='cpu')"
    ),
    'where': (
        '>>> import gpugrad as gg\n'
        '>>> x = (gg.arange(12) % 3 != 0).reshape(3, 4)\n'
        '>>> y = gg.linspace(2.1, -1.9, 12).reshape(3, 4)\n'
        '>>> z = gg.linspace(-1.9, 2.1, 12).reshape(3, 4)\n'
        '>>> out = gg.where(x, y, z)\n'
        '>>> out\n'
        'tensor([[-1.9   ,  1.7364,  1.3727, -0.8091],\n'
        '        [ 0.6455,  0.2818,  0.2818, -0.4455],\n'
        "        [-0.8091,  1.3727, -1.5364, -1.9   ]], device='cpu')"
    ),
}

# doctest (and pytest --doctest-modules) runs each example as a test of its own.
__test__ = EXAMPLES
